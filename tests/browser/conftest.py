"""Fixtures of the browser suite: the system suite's throwaway node and services, a workstation gateway with a
tokens file for agents on two desks, and agent pages in headless Chromium, one WebDriver session each.

Environment:
  SWITCHBOARD_BIN_DIR   folder with switchboard-router, -notifier, -closer and -gateway (required)
  SWITCHBOARD_TEST_ROOT folder for the node and the logs (a temporary one if unset)
  CHROMIUM, CHROMEDRIVER  the browser and its driver (Debian's /usr/bin/chromium and /usr/bin/chromedriver)
"""

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service as ChromeDriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
PROBE_SCRIPT = (Path(__file__).parent / "probe.js").read_text()


def _load_system_suite_module(name, file):
    """A module of the system suite, under `name`: its conftest under a name of its own, since this folder's
    conftest is `conftest` too."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests/system" / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


system_suite = _load_system_suite_module("system_suite", "conftest.py")
# The check that what the dashboard reads is exported; here, for the gateway's panels.
metric_queries = _load_system_suite_module("metric_queries", "metric_queries.py")
# Fixtures reused as they are: one node for the whole run.
test_root = system_suite.test_root
broker = system_suite.broker
DeskClient = system_suite.DeskClient
Services = system_suite.Services
free_port = system_suite.free_port
wait_until = system_suite.wait_until
# The node's development user, which the tests act as; the Router takes agent commands from it and from the
# gateway's user.
TEST_USER = system_suite.TEST_USER
AGENT_COMMAND_USERS = system_suite.AGENT_COMMAND_USERS

GRACE_MS = 2000
# A loaded 2-core machine: deadlines are generous, ring times short.
PAGE_TIMEOUT = 30.0
EVENT_TIMEOUT = 20.0
# The gateway connects as its own least-privileged user of deploy/rabbitmq/definitions.json.
GATEWAY_USER = "switchboard-gateway"
GATEWAY_PASSWORD = "change-me"


def parse_time(text):
    """An RFC 3339 UTC time of the contract, as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_services_for_reports = []


@pytest.fixture(scope="session")
def bin_dir():
    path = os.environ.get("SWITCHBOARD_BIN_DIR")
    if not path:
        pytest.exit("SWITCHBOARD_BIN_DIR must name the folder of the built services and gateway", returncode=2)
    return Path(path)


@pytest.fixture(scope="session")
def services(broker, test_root, bin_dir):
    log_dir = test_root / "browser-logs"
    log_dir.mkdir(exist_ok=True)
    services = Services(
        bin_dir, log_dir, broker.url, extra_arguments={"router": ("--agent-command-users", AGENT_COMMAND_USERS)})
    for service in system_suite.SERVICES:
        services.start(service)
    for service in system_suite.SERVICES:
        services.wait_ready(services.instances(service)[0])
    _services_for_reports.append(services)
    yield services
    services.stop_all()


class Agent:
    def __init__(self, desk, agent, name):
        self.desk = desk
        self.agent = agent
        self.name = name
        self.token = secrets.token_urlsafe(24)


class Gateway:
    """switchboard-gateway as a process, signing in the agents of its tokens file."""

    def __init__(self, bin_dir, log_dir, broker, agents, instance, options=()):
        self.log_path = log_dir / f"{instance}.log"
        self.port = free_port()
        tokens_file = log_dir / f"{instance}-tokens.json"
        tokens_file.write_text(json.dumps({"agents": [
            {"token": a.token, "desk": a.desk, "agent": a.agent, "name": a.name} for a in agents
        ]}))
        amqp_url = f"amqp://{GATEWAY_USER}:{GATEWAY_PASSWORD}@127.0.0.1:{broker.amqp_port}/switchboard"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(bin_dir / "switchboard-gateway"),
                    "--amqp-url", amqp_url,
                    "--http-host", "127.0.0.1",
                    "--http-port", str(self.port),
                    "--tokens-file", str(tokens_file),
                    "--grace-milliseconds", str(GRACE_MS),
                    "--instance-name", instance,
                    *options,
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )

    def url(self, token):
        return f"http://127.0.0.1:{self.port}/?token={token}"

    def wait_ready(self):
        system_suite.wait_ready(self.process, self.port, "the gateway", self.log_tail)

    def log_tail(self, lines=40):
        text = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return f"--- {self.log_path} (last {lines} lines) ---\n" + "\n".join(text[-lines:])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class AgentPage:
    """A page of the gateway in its own headless Chromium, with probe.js installed before the page's scripts.
    `agent` is the agent its sign-in link is for (None for a link that signs in nobody); `label` names the page in
    messages."""

    def __init__(self, label, screenshot_prefix, temp_dir, agent=None):
        self.agent = agent
        self.label = label
        self.screenshot_prefix = screenshot_prefix
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for argument in (
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,760",
            # The ringtone's Web Audio code runs without a click.
            "--autoplay-policy=no-user-gesture-required",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Chromium leaves a folder in its TMPDIR for every browser; in one under the test root, they go with the run.
        service = ChromeDriverService(
            os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"), env={**os.environ, "TMPDIR": str(temp_dir)})
        self.driver = webdriver.Chrome(options=options, service=service)
        self.closed = False
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE_SCRIPT})

    def open(self, url):
        self.driver.get(url)

    # Waiting and reading

    def wait(self, condition, timeout, what):
        """Waits until `condition(driver)` is truthy; a timeout names `what` and shows what the page received."""
        try:
            return WebDriverWait(
                self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
            ).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"{self.label}'s page: timed out after {timeout}s waiting for {what}\n"
                f"last messages received: {self.received()[-12:]}"
            ) from None

    def find_all(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector):
        elements = self.find_all(selector)
        return elements[0].text if elements else None

    def wait_visible(self, selector, timeout=PAGE_TIMEOUT):
        return self.wait(
            lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()), None),
            timeout, f"{selector} to be visible")

    def wait_gone(self, selector, timeout=PAGE_TIMEOUT):
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, selector), timeout, f"{selector} to be gone")

    def wait_signed_in(self, timeout=PAGE_TIMEOUT):
        """Connected, showing `<agent> · <desk>`, and the gateway has said hello."""
        self.wait(
            lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "connected",
            timeout, "#connection data-state=connected")
        expected = f"{self.agent.agent} · {self.agent.desk}"
        self.wait(lambda d: expected in d.find_element(By.ID, "agent").text, timeout, f"#agent to show {expected!r}")
        self.wait(lambda d: self.received(kind="hello"), timeout, "the gateway's hello")

    def ring_selector(self, conversation, offer=None):
        selector = f'#rings .ring[data-conversation="{conversation}"]'
        return selector + (f'[data-offer="{offer}"]' if offer else "")

    def session_selector(self, conversation):
        return f'#sessions li.session[data-conversation="{conversation}"]'

    # The probe

    def received(self, **fields):
        """Messages the page's socket received (held or not) whose fields equal `fields`."""
        messages = self.driver.execute_script("return window.__switchboardProbe.received;") or []
        return [m for m in messages if all(m.get(k) == v for k, v in fields.items())]

    def hold(self, **rule):
        """From now on, messages matching `rule` never reach the page's own handlers."""
        self.driver.execute_script("window.__switchboardProbe.holding.push(arguments[0]);", rule)

    def rewrite_incoming(self, match, fields):
        """From now on, messages matching `match` reach the page with `fields` in place."""
        self.driver.execute_script(
            "window.__switchboardProbe.rewriting.push({match: arguments[0], set: arguments[1]});", match, fields)

    def socket_count(self):
        """How many WebSockets the page has opened."""
        return self.driver.execute_script("return window.__switchboardProbe.sockets.length;")

    def socket_closes(self):
        """How each of the page's sockets closed, in order: {code, reason}."""
        return self.driver.execute_script("return window.__switchboardProbe.closes;")

    def reconnect(self):
        """Closes the page's socket and waits until the page has connected again and been greeted."""
        sockets = self.socket_count()
        hellos = len(self.received(kind="hello"))
        self.driver.execute_script("const s = window.__switchboardProbe.sockets; s[s.length - 1].close();")
        self.wait(lambda d: len(self.received(kind="hello")) > hellos and self.socket_count() > sockets,
                  PAGE_TIMEOUT, "the page to connect again and be greeted")
        self.wait_signed_in()

    def drop_outgoing(self, **rule):
        """From now on, frames the page sends that match `rule` never leave it."""
        self.driver.execute_script("window.__switchboardProbe.dropping.push(arguments[0]);", rule)

    def stop_dropping(self):
        self.driver.execute_script("window.__switchboardProbe.dropping.length = 0;")

    def dropped(self, **fields):
        messages = self.driver.execute_script("return window.__switchboardProbe.dropped;") or []
        return [m for m in messages if all(m.get(k) == v for k, v in fields.items())]

    def deliver_to_page(self, message):
        """Hands `message` to the page as if its WebSocket had received it from the gateway."""
        state = self.driver.execute_script(
            """const sockets = window.__switchboardProbe.sockets;
               const socket = sockets[sockets.length - 1];
               if (!socket) return 'none';
               socket.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(arguments[0]) }));
               return 'delivered';""",
            message)
        assert state == "delivered", f"{self.label}'s page has no WebSocket"

    def held(self, **fields):
        messages = self.driver.execute_script("return window.__switchboardProbe.held;") or []
        return [m for m in messages if all(m.get(k) == v for k, v in fields.items())]

    def errors(self):
        return self.driver.execute_script("return window.__switchboardProbe.errors;")

    def rings_added(self):
        return self.driver.execute_script("return window.__switchboardProbe.ringsAdded;")

    def send_on_page_socket(self, message, times=1):
        """Sends `message` as a text frame on the page's own, signed-in WebSocket, `times` times at once."""
        state = self.driver.execute_script(
            """const sockets = window.__switchboardProbe.sockets;
               const socket = sockets[sockets.length - 1];
               if (!socket || socket.readyState !== WebSocket.OPEN) return socket ? socket.readyState : 'none';
               for (let i = 0; i < arguments[1]; i++) socket.send(JSON.stringify(arguments[0]));
               return 'sent';""",
            message, times)
        assert state == "sent", f"{self.label}'s page has no open WebSocket (state {state})"

    # Evidence

    def screenshot(self, state):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.screenshot_prefix}-{state}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console(self):
        try:
            return [f"{entry['level']} {entry['message']}" for entry in self.driver.get_log("browser")]
        except Exception as error:  # the browser may be gone; the report should still be written
            return [f"(console not readable: {error})"]

    def close(self):
        if not self.closed:
            self.closed = True
            self.driver.quit()


class Workstation:
    """One gateway for a fresh pair of desks: `manual` (rings) with alice and bob, `auto` (automatic
    service) with dave. Desk clients act as the development user and record each desk's messages."""

    def __init__(self, broker, bin_dir, log_dir, browser_temp_dir, test_name, gateway_options=()):
        tag = uuid.uuid4().hex[:8]
        self.manual = DeskClient(broker.url, f"b{tag}m", user_id=TEST_USER)
        self.auto = DeskClient(broker.url, f"b{tag}a", user_id=TEST_USER)
        self.agents = {
            "alice": Agent(self.manual.desk, "alice", "Alice"),
            "bob": Agent(self.manual.desk, "bob", "Bob"),
            "dave": Agent(self.auto.desk, "dave", "Dave"),
        }
        self.test_name = test_name
        self.browser_temp_dir = browser_temp_dir
        self.pages = []
        self.gateway = Gateway(bin_dir, log_dir, broker, self.agents.values(), f"gateway-{tag}", gateway_options)
        try:
            self.gateway.wait_ready()
        except BaseException:
            self.close(failed=True)
            raise

    def setup_desk(self, desk, agents, **settings):
        """Configures `desk` and upserts `agents` as online; returns once the Router has taken all of it."""
        desk.configure(**settings)
        for agent in agents:
            desk.add_agent(agent, status="online")
        desk.ready(timeout=EVENT_TIMEOUT)

    def open_page(self, agent):
        """The agent's page for its sign-in link, in a WebDriver session of its own, once signed in."""
        signing_in = self.agents[agent]
        page = AgentPage(agent, self.test_name, self.browser_temp_dir, agent=signing_in)
        self.pages.append(page)
        page.open(self.gateway.url(signing_in.token))
        page.wait_signed_in()
        return page

    def open_page_for_token(self, token, label):
        """A page for a sign-in link with any token, known to the gateway or not."""
        page = AgentPage(label, self.test_name, self.browser_temp_dir)
        self.pages.append(page)
        page.open(self.gateway.url(token))
        return page

    def close(self, failed):
        """Closes every page, the gateway and the desk clients; after a passing test, fails if a page's scripts
        threw (the ringtone must not throw where audio is not allowed)."""
        errors = {}
        try:
            for page in self.pages:
                if page.closed:
                    continue
                if failed:
                    try:
                        page.screenshot(f"failed-{page.label}")
                    except Exception:  # evidence is best effort; closing must go on
                        pass
                else:
                    errors[page.label] = page.errors()
                page.close()
        finally:
            # A browser that will not close must not leave the gateway running.
            self.gateway.stop()
            self.manual.close()
            self.auto.close()
        thrown = {label: found for label, found in errors.items() if found}
        assert not thrown, f"the page's scripts threw: {thrown}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
    if not report.failed:
        return
    workstation = getattr(item, "workstation", None)
    if workstation is not None:
        for page in workstation.pages:
            if not page.closed:
                report.sections.append((f"console of {page.label}'s page", "\n".join(page.console()[-30:])))
        report.sections.append(("log gateway", workstation.gateway.log_tail()))
    for services in _services_for_reports:
        for instance in services.processes:
            report.sections.append((f"log {instance}", services.log_tail(instance)))


def pytest_configure(config):
    config.addinivalue_line("markers", "gateway_options(*arguments): more arguments for the test's switchboard-gateway")


@pytest.fixture
def workstation(services, broker, bin_dir, test_root, request):
    log_dir = test_root / "browser-logs"
    browser_temp_dir = test_root / "browser-tmp"
    browser_temp_dir.mkdir(exist_ok=True)
    marker = request.node.get_closest_marker("gateway_options")
    workstation = Workstation(
        broker, bin_dir, log_dir, browser_temp_dir, request.node.name, gateway_options=marker.args if marker else ())
    request.node.workstation = workstation
    yield workstation
    call = getattr(request.node, "report_call", None)
    workstation.close(failed=call is None or call.failed)
