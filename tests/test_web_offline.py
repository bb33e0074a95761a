"""The page without the API and without a network: reading in the browser (web/reader/ with
onnxruntime-web), the service worker, the history kept in IndexedDB, batches, speech. Real
headless Chromium against the real local function (serve.py), as tests/test_web.py."""

import csv
import io
import json

import pytest

from bench.uploads import number_upload
from tests.test_web import SHOTS, _save_png, draw_a_one

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CACHE = "hdr-jax-page-v1"


def _wait_result(page, timeout=60_000):
    page.wait_for_function("document.getElementById('result').textContent !== ''",
                           timeout=timeout)


NUMBER = [3, 2, 1, 18]  # Test digits written as one number.


def _read_number(page, tmp_path, real_mnist) -> str:
    """Reads NUMBER, photographed on paper, in number mode; returns what it should read."""
    import numpy as np

    page.check("input[name=mode][value=number]")
    path = tmp_path / "number.jpg"
    path.write_bytes(number_upload([real_mnist.test.images[i] for i in NUMBER],
                                   np.random.default_rng(5)))
    page.set_input_files("#image-input", str(path))
    page.click("#predict")
    _wait_result(page)
    return "".join(str(real_mnist.test.labels[i]) for i in NUMBER)


def _digit_files(tmp_path, real_mnist, indices):
    return [str(_save_png(tmp_path / f"digit-{i}.png", 255 - real_mnist.test.images[i]))
            for i in indices]


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context
    context.close()


def _posts(page) -> list:
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    return posts


def test_api_down_the_page_reads_on_this_device(context, site, tmp_path,
                                                real_mnist):
    page = context.new_page()
    page.route("**/", lambda route: route.abort("connectionrefused")
               if route.request.method == "POST" else route.continue_())
    page.goto(site)
    page.set_input_files("#image-input", _digit_files(tmp_path, real_mnist, [0]))
    page.click("#predict")
    _wait_result(page)
    assert page.text_content("#result") == str(real_mnist.test.labels[0])
    assert "Cannot reach the prediction service: reading on this device" in page.text_content(
        "#notice")
    assert "read on this device" in page.text_content("#where")
    assert page.locator("#seen-images img").count() == 1
    assert page.locator("#chart .bar").count() == 10


def test_on_device_reads_a_number_without_sending_anything(context, site, tmp_path,
                                                           real_mnist):
    page = context.new_page()
    posts = _posts(page)
    page.goto(site)
    page.check("#on-device")
    number = _read_number(page, tmp_path, real_mnist)
    assert page.text_content("#result") == number
    assert page.locator("#seen-images img").count() == 4
    assert posts == []  # Nothing left the browser.
    page.reload()
    assert page.is_checked("#on-device")  # The choice is remembered.


def test_after_one_visit_the_page_opens_and_reads_with_the_network_off(
        context, site, tmp_path, real_mnist):
    page = context.new_page()
    page.goto(site)
    runtime = json.loads(page.evaluate("fetch('model/model.json').then(r => r.text())"))
    expected = 14 + len(runtime["runtime_files"])  # sw.js's page files and the runtime.
    for _ in range(120):  # The service worker caches the page, the model and the runtime.
        cached = page.evaluate(f"caches.open('{CACHE}').then(c => c.keys()).then(k => k.length)")
        if cached >= expected:
            break
        page.wait_for_timeout(500)
    assert cached >= expected
    context.set_offline(True)
    page.reload()
    assert page.title().startswith("hdr-jax")
    page.wait_for_function("document.getElementById('about-facts').textContent"
                           ".includes('reads on this device')")
    # (In Chromium 150, which CI installs now, a page reloaded while offline, here from the
    # service worker's cache, reports navigator.onLine true until the emulated state is set
    # again: without this the page learns it only from a failed request.)
    context.set_offline(False)
    context.set_offline(True)
    page.wait_for_function("!navigator.onLine")
    page.set_input_files("#image-input", _digit_files(tmp_path, real_mnist, [1]))
    page.click("#predict")
    _wait_result(page)
    assert page.text_content("#result") == str(real_mnist.test.labels[1])
    assert "read on this device" in page.text_content("#where")
    assert "offline" in page.text_content("#notice")  # Said, and no request waited out.
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "offline_reading.png"), full_page=True)
    page.click("#clear")
    draw_a_one(page)  # A drawing is read offline too.
    page.click("#predict")
    _wait_result(page)
    assert page.text_content("#result") == "1"
    context.set_offline(False)


def test_history_is_kept_exported_as_csv_and_cleared(context, site, tmp_path,
                                                     real_mnist):
    page = context.new_page()
    page.goto(site)
    files = _digit_files(tmp_path, real_mnist, [0, 1, 2])
    bad = tmp_path / "=cmd.png"  # A damaged file, named like a spreadsheet formula.
    bad.write_bytes(b"not an image")
    page.set_input_files("#image-input", [*files, str(bad)])
    page.click("#predict")
    page.wait_for_function("document.querySelectorAll('#history li').length === 4")
    page.reload()  # Kept by the browser, not by the page's memory.
    page.wait_for_function("document.querySelectorAll('#history li').length === 4")
    assert page.locator("#history li img").count() == 3  # The damaged file has no picture.
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    labels = [str(v) for v in real_mnist.test.labels[:3]]
    assert [r["result"] for r in rows[:3]] == labels
    assert [r["file"] for r in rows] == ["digit-0.png", "digit-1.png", "digit-2.png", "'=cmd.png"]
    assert rows[3]["result"].startswith("error: ") and rows[3]["confidence"] == ""
    assert all(r["where"] == "read on the server" and r["mode"] == "digit" for r in rows)
    assert all(0.5 < float(r["confidence"]) <= 1 for r in rows[:3])
    page.click("#clear-history")
    page.wait_for_function("document.querySelectorAll('#history li').length === 0")
    page.reload()
    page.wait_for_timeout(500)
    assert page.locator("#history li").count() == 0


def test_a_batch_shows_its_progress_and_can_be_cancelled(context, site, tmp_path,
                                                         real_mnist):
    page = context.new_page()
    page.goto(site)
    page.check("#on-device")
    files = _digit_files(tmp_path, real_mnist, range(40))
    page.set_input_files("#image-input", files)
    page.click("#predict")
    page.wait_for_function("document.getElementById('progress').value >= 1", timeout=60_000)
    assert page.is_visible("#batch") and "of 40" in page.text_content("#progress-text")
    page.click("#cancel")
    page.wait_for_function("!document.getElementById('predict').disabled")
    status = page.text_content("#history-status")
    assert status.startswith("Cancelled: ") and status.endswith("of 40 read.")
    done = int(status.split()[1])
    assert 1 <= done < 40
    assert page.locator("#results-list li").count() == (done if done > 1 else 0)
    page.wait_for_function(f"document.querySelectorAll('#history li').length === {done}")


def test_read_aloud_and_speak_every_result(context, site, tmp_path, real_mnist):
    context.add_init_script("""window.spoken = [];
        speechSynthesis.speak = (u) => window.spoken.push(u.text);""")
    page = context.new_page()
    page.goto(site)
    number = _read_number(page, tmp_path, real_mnist)
    assert page.evaluate("window.spoken") == []  # Only when asked.
    page.click("#read-aloud")
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    said = " ".join(words[int(c)] for c in number)
    assert page.evaluate("window.spoken") == [said]
    page.check("#speak-results")
    page.click("#predict")
    page.wait_for_function("window.spoken.length === 2")
    assert page.evaluate("window.spoken")[1] == said


def test_everything_works_from_the_keyboard(context, site, tmp_path, real_mnist):
    page = context.new_page()
    page.goto(site)
    page.evaluate("""window.opened = 0;
        document.getElementById('image-input').addEventListener('click', () => window.opened++)""")
    page.focus("#add-images")
    page.keyboard.press("Enter")  # Opens the system's chooser (headless Chromium shows none).
    assert page.evaluate("window.opened") == 1
    page.set_input_files("#image-input", _digit_files(tmp_path, real_mnist, [2]))
    page.focus("#predict")
    page.keyboard.press("Enter")
    _wait_result(page)
    assert page.text_content("#result") == str(real_mnist.test.labels[2])
    page.focus("#clear-history")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#history li').length === 0")


def test_phone_layout_has_one_add_control_and_a_square_pad(browser, site):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(site)
    pad = page.locator("#pad").bounding_box()
    assert abs(pad["width"] - pad["height"]) < 1 and 250 <= pad["width"] <= 390
    # One way to add images: the button (the system's chooser offers files and the camera);
    # the file input behind it is not shown.
    assert page.is_visible("#add-images") and page.locator("input[type=file]").count() == 1
    assert page.locator("#image-input").bounding_box()["width"] <= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "phone_start.png"), full_page=True)
    context.close()
