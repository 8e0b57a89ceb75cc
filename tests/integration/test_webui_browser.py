"""A student's chat through the real Open WebUI, in a real browser (Debian's chromium, driven by Playwright).

The sandbox runs Open WebUI 0.6.18 itself for the WebUI pod (tests/cluster/pod_webui.py), with the pod's
environment, its PVC as the data directory and its cluster DNS names reaching the namespace's engine
pod, whose engine process checks the API key (pod_engines.py). The story, as a student lives it:

1. deploy.yml with an API key, access.yml, open the WebUI URL it printed;
2. create the first (admin) account, pick the model, ask a question, see the model's answer;
3. the WebUI pod is deleted; the new pod has the same login and the same chat (PVC, WEBUI_SECRET_KEY);
4. change_model.yml: the WebUI lists the new model (ENABLE_PERSISTENT_CONFIG=False);
5. the engine refuses a request without the key, answers with it (the WebUI sent it all along).

Screenshots go to tests/output/webui-browser/ (test artefacts).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

from sandboxlib import (REPO, SANDBOX_DIR, free_port, pod_engine, pod_runner_features, remove_collection,
                        run_playbook, running_pod, wait_until)

NS = "wcls022-default"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # a GPTQ model: change_model.yml with quantization=gptq
API_KEY = "sk-browser-test-0123456789"
SHOTS = REPO / "tests" / "output" / "webui-browser"
CHROMIUM = "/usr/bin/chromium"
# As the machine's notes say: without the background-networking flags Chromium keeps trying the closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ADMIN = {"name": "Student Admin", "email": "student@example.org", "password": "a-long-test-password-1"}
QUESTION = "What is the capital of France?"


def access(kubectl, ports, state="present"):
    run = run_playbook("playbooks/access.yml", limit=NS, extra_vars=dict(ports, state=state, icc_kubectl=kubectl))
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    return "\n".join(run.result("Show the URLs", NS)["msg"]) if state == "present" else ""


def printed_url(summary, name):
    match = re.search(r"%s: (http://127\.0\.0\.1:\d+/\S*)" % name, summary)
    assert match, "access.yml printed no %s URL: %s" % (name, summary)
    return match.group(1)


def http_status(url, key=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer %s" % key} if key else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def browser():
    assert pathlib.Path(CHROMIUM).exists(), "Debian's chromium is missing: hack/tools.sh installs it (make test runs it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def deployed(sandbox):
    assert pod_runner_features()["webuis"] and pod_runner_features()["engines"], (
        "start the sandbox with SANDBOX_VLLM_CHECKS=1 and the real WebUI (make test does)")
    remove_collection(sandbox, NS)
    run = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars={"vllm_api_key": API_KEY})
    assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
    ports = {"access_state_dir": str(SANDBOX_DIR / "access-browser"), "access_api_port": free_port(),
             "access_webui_port": free_port()}
    yield ports
    access(sandbox.kubectl_path, ports, state="absent")
    remove_collection(sandbox, NS)


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / ("%s.png" % name)))


def api(page, path):
    """GET ``path`` of the WebUI from inside the page, with the logged-in user's token (as the UI does)."""
    return page.evaluate("""async (path) => {
        const r = await fetch(path, {headers: {Authorization: 'Bearer ' + localStorage.token}});
        return {status: r.status, body: await r.json()};
    }""", path)


def dismiss_release_notes(page):
    """Open WebUI shows "What's New" after a login; its button closes it."""
    button = page.get_by_role("button", name="Okay, Let's Go!")
    try:
        button.wait_for(timeout=5000)
        button.click()
    except Exception:  # pylint: disable=broad-except  # no release notes this time
        pass


def engine_log(sandbox):
    pod = running_pod(sandbox, NS)
    return sandbox.kubectl("-n", NS, "logs", pod["metadata"]["name"]).stdout


def test_a_student_chats_through_the_real_webui(sandbox, deployed, browser):
    shutil.rmtree(SHOTS, ignore_errors=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60000)
    try:
        story(sandbox, deployed, page)
    except BaseException:
        shot(page, "failed")  # the page as it was when the story broke off
        raise
    finally:
        context.close()


def story(sandbox, deployed, page):
    url = printed_url(access(sandbox.kubectl_path, deployed), "webui")

    # 1. The first account of a new Open WebUI becomes its admin.
    t0 = time.time()
    page.goto(url, timeout=300000)  # the first connection starts the WebUI (pod_webui.py)
    page.get_by_role("button", name=re.compile("Get started", re.I)).click()
    page.get_by_placeholder(re.compile("name", re.I)).first.fill(ADMIN["name"])
    page.locator("input[type=email]").fill(ADMIN["email"])
    page.locator("input[type=password]").fill(ADMIN["password"])
    shot(page, "1-signup")
    page.get_by_role("button", name=re.compile("Create Admin Account", re.I)).click()
    dismiss_release_notes(page)
    page.locator("#chat-input").wait_for()
    user = api(page, "/api/v1/auths/")
    assert user["status"] == 200 and user["body"]["role"] == "admin" and user["body"]["email"] == ADMIN["email"]

    # 2. Only the engine's model is offered (no Arena Model); pick it, ask, get the model's answer.
    models = api(page, "/api/models")
    assert [m["id"] for m in models["body"]["data"]] == [MODEL], models
    page.get_by_role("button", name="Select a model").click()
    page.locator("button[aria-label='%s']" % MODEL).click()
    before = engine_log(sandbox).count("POST /v1/chat/completions HTTP/1.1\" 200")
    chat_input = page.locator("#chat-input")
    chat_input.fill(QUESTION)
    assert chat_input.inner_text().strip() == QUESTION
    chat_input.press("Enter")
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+$"))
    chat_id = page.url.rsplit("/", 1)[1]

    def answer():
        chat = api(page, "/api/v1/chats/%s" % chat_id)["body"]["chat"]
        done = [m for m in chat["history"]["messages"].values()
                if m["role"] == "assistant" and m.get("done") and m.get("content", "").strip()]
        return done[0]["content"].strip() if done else None
    text = wait_until(answer, timeout=180, what="the model's answer in the WebUI's chat")
    page.get_by_text(text[:40]).first.wait_for()
    shot(page, "2-answer")
    # The answer came from the namespace's engine pod (its access log), which demanded the key.
    assert engine_log(sandbox).count("POST /v1/chat/completions HTTP/1.1\" 200") > before
    assert pod_engine(running_pod(sandbox, NS))["api_key"] is True
    print("first answer after %.1f s (WebUI start included): %s" % (time.time() - t0, text))

    # 3. A new WebUI pod: same login (WEBUI_SECRET_KEY from its Secret), same chat (the PVC).
    old = running_pod(sandbox, NS, component="webui")
    sandbox.kubectl("-n", NS, "delete", "pod", old["metadata"]["name"], "--wait=true", timeout=120)
    new = running_pod(sandbox, NS, component="webui")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    # kubectl port-forward ends with its pod; access.yml starts it again on the same port.
    assert printed_url(access(sandbox.kubectl_path, deployed), "webui") == url
    page.goto(url + "c/" + chat_id, timeout=300000)
    dismiss_release_notes(page)
    page.get_by_text(text[:40]).first.wait_for()
    assert page.get_by_text(QUESTION).count() >= 1
    assert api(page, "/api/v1/auths/")["body"]["email"] == ADMIN["email"]
    shot(page, "3-after-pod-restart")

    # 4. A model change reaches the WebUI without a WebUI restart.
    run = run_playbook("playbooks/change_model.yml", limit=NS, extra_vars={"model": SECOND, "quantization": "gptq", "vllm_api_key": API_KEY})
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    assert running_pod(sandbox, NS, component="webui")["metadata"]["uid"] == new["metadata"]["uid"]
    page.goto(url, timeout=300000)
    dismiss_release_notes(page)
    page.get_by_role("button", name="Select a model").click()
    page.locator("button[aria-label='%s']" % SECOND).wait_for()
    assert [m["id"] for m in api(page, "/api/models")["body"]["data"]] == [SECOND]
    shot(page, "4-new-model")

    # 5. The engine itself wants the key the WebUI was given.
    api_url = printed_url(access(sandbox.kubectl_path, deployed), "api")
    assert http_status(api_url + "/models") == 401
    assert http_status(api_url + "/models", API_KEY) == 200
    assert pod_engine(running_pod(sandbox, NS))["names"] == [SECOND]
