"""The page in a real headless Chromium (Debian's), against the real local function.

Screenshots of each scenario are kept in artifacts/screenshots/ for people to look at."""

import numpy as np
import pytest
from PIL import Image

from bench.uploads import number_upload
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture
def page(browser, site, request):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site)
    page.wait_for_function("document.getElementById('about-facts').textContent"
                           ".includes('accuracy')")
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], errors


def _save_png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_upload_a_digit_file_and_read_the_prediction(page, tmp_path, real_mnist):
    path = _save_png(tmp_path / "seven.png", 255 - real_mnist.test.images[0])  # Dark on light.
    page.set_input_files("#image-input", str(path))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    assert page.text_content("#result") == "7"
    assert page.text_content("#error") == ""
    assert "read on the server" in page.text_content("#where")
    assert page.locator("#chart .bar").count() == 10
    assert page.locator("#seen-images img").count() == 1
    assert "98" in page.text_content("#about-facts") or "99" in page.text_content(
        "#about-facts")


def draw_a_one(page) -> None:
    """A vertical stroke down the middle of the pad, with the mouse (pointer events)."""
    page.evaluate("window.scrollTo(0, 0)")  # The pad in view: a click may have scrolled.
    box = page.locator("#pad").bounding_box()
    x = box["x"] + box["width"] * 0.5
    page.mouse.move(x, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(x, box["y"] + box["height"] * (0.15 + 0.7 * i / 20))
    page.mouse.up()


def test_draw_a_digit_with_pointer_events_and_predict(page):
    draw_a_one(page)
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    assert page.text_content("#result") == "1"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "drawn_digit_predicted.png"), full_page=True)
    page.click("#undo")
    assert page.locator("#preview-wrap").is_hidden()
    page.click("#clear")
    assert page.text_content("#result") == ""


def test_a_refused_file_type_shows_its_message(page, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("seven")
    page.set_input_files("#image-input", str(path))
    assert "not a supported image type" in page.text_content("#error")
    page.click("#predict")
    assert "first" in page.text_content("#error")


def test_an_api_error_is_a_sentence_next_to_the_input(page, tmp_path):
    path = _save_png(tmp_path / "blank.png", np.full((60, 60), 255, np.uint8))
    page.set_input_files("#image-input", str(path))
    page.click("#predict")
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    assert "No digit found" in page.text_content("#error")


def test_number_mode_shows_every_digit(page, tmp_path, real_mnist):
    idx = [3, 2, 1, 18]
    raw = number_upload([real_mnist.test.images[i] for i in idx], np.random.default_rng(5))
    path = tmp_path / "number.jpg"
    path.write_bytes(raw)
    page.check("input[name=mode][value=number]")
    page.set_input_files("#image-input", str(path))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    expected = "".join(str(real_mnist.test.labels[i]) for i in idx)
    assert page.text_content("#result") == expected
    assert page.locator("#seen-images img").count() == 4


def test_several_files_give_a_list_of_results(page, tmp_path, real_mnist):
    paths = [str(_save_png(tmp_path / f"d{i}.png", real_mnist.test.images[i])) for i in range(3)]
    page.set_input_files("#image-input", paths)
    page.click("#predict")
    page.wait_for_function("document.querySelectorAll('#results-list li').length === 3")
    items = page.locator("#results-list li").all_text_contents()
    labels = [str(v) for v in real_mnist.test.labels[:3]]
    assert [item.split(": ")[1][0] for item in items] == labels


def test_phone_screen_layout_fits_and_works(browser, site, tmp_path, real_mnist):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(site)
    path = _save_png(tmp_path / "two.png", 255 - real_mnist.test.images[1])
    page.set_input_files("#image-input", str(path))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    assert page.text_content("#result") == str(real_mnist.test.labels[1])
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # No sideways scroll.
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
    context.close()


def _config(page, **settings):
    """Serves web/config.js with these settings instead of the shipped ones."""
    import json

    body = f"window.HDR_CONFIG = {json.dumps({'apiUrl': '', **settings})};"
    page.route("**/config.js", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body=body))


def test_api_from_a_link_is_used_only_for_a_trusted_origin(browser, site):
    # Untrusted: refused, said so, and the page keeps its own API (it still reads).
    page = browser.new_page()
    page.goto(site + "?api=http://127.0.0.1:9/")
    page.wait_for_function("document.getElementById('about-facts').textContent"
                           ".includes('accuracy')")
    assert "does not trust" in page.text_content("#notice") and page.is_visible("#notice")
    page.close()
    # Listed in config.js: used (nothing listens on port 9).
    page = browser.new_page()
    _config(page, allowedApiOrigins=["http://127.0.0.1:9"])
    page.goto(site + "?api=http://127.0.0.1:9/")
    page.wait_for_function("document.getElementById('about-facts').textContent"
                           ".includes('not reachable')")
    assert page.is_hidden("#notice")
    page.close()


def test_a_service_that_never_answers_is_read_on_this_device_instead(browser, site, tmp_path,
                                                                    real_mnist):
    page = browser.new_page()
    _config(page, timeoutSeconds=1)
    hung = []
    page.route("**/", lambda route: hung.append(route) if route.request.method == "POST"
               else route.continue_())
    page.goto(site)
    page.set_input_files("#image-input", str(_save_png(tmp_path / "d.png",
                                                       real_mnist.test.images[0])))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''",
                           timeout=30_000)
    assert "did not answer within 1 seconds: reading on this device" in page.text_content(
        "#notice")
    assert page.text_content("#result") == str(real_mnist.test.labels[0])
    assert "read on this device" in page.text_content("#where")
    assert hung and page.is_enabled("#predict") and page.text_content("#error") == ""
    page.close()


def test_a_low_confidence_reading_is_shown_as_such(page, tmp_path, real_mnist):
    import json

    answer = {"digit": 4, "confidence": 0.61, "low_confidence": True,
              "probabilities": [0.01] * 4 + [0.61] + [0.0433] * 5}
    page.route("**/", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(answer))
        if route.request.method == "POST" else route.continue_())
    page.set_input_files("#image-input", str(_save_png(tmp_path / "d.png",
                                                       real_mnist.test.images[4])))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    assert page.text_content("#result") == "4"
    assert "low confidence: check this reading" in page.text_content("#confidence")
    assert "low" in page.get_attribute("#result", "class")


def test_an_accessibility_checker_finds_nothing_to_fix(page, tmp_path, real_mnist):
    """axe-core (vendored under tests/vendor) on the page, after a reading is shown."""
    page.set_input_files("#image-input", str(_save_png(tmp_path / "d.png",
                                                       real_mnist.test.images[0])))
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    page.add_script_tag(path=str(ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"))
    violations = page.evaluate("""async () => (await axe.run(document)).violations.map(
        v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)""")
    assert violations == []
