"""End to end in a real headless browser: Debian's Chromium driven by Playwright (no download)."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest

import app
from captioner import Captioner
from captioner.web import cards
from captioner.web.fake_camera import CHROMIUM
from conftest import start_app

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("CAPTIONER_SCREENSHOTS_DIR")
                   or Path(__file__).resolve().parent.parent / "docs" / "screenshots")
TAKE_SCREENSHOTS = os.environ.get("CAPTIONER_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_url(request, coco_fixture, tmp_path_factory):
    """The app over the tiny model with examples of its own; for the README's pictures
    (CAPTIONER_SCREENSHOTS=1) the real model ($CAPTIONER_CHECKPOINT, else the shipped default) and
    assets/examples."""
    from captioner.assets import example_images
    examples = app.EXAMPLES
    if not (TAKE_SCREENSHOTS and example_images(examples)):
        examples = tmp_path_factory.mktemp("examples")
        for path in sorted(coco_fixture[1].iterdir())[:4]:
            shutil.copy(path, examples / path.name)
    if TAKE_SCREENSHOTS:
        model = Captioner.load()
    else:   # the tiny model, with the shipped model's card and record (the line under the title, About)
        checkpoint = tmp_path_factory.mktemp("checkpoint") / "ckpt"
        shutil.copytree(request.getfixturevalue("trained_checkpoint")[0], checkpoint)
        for name in (cards.RECORD, cards.CARD):
            shutil.copy(app.EXAMPLES.parent / "model" / name, checkpoint)
        model = Captioner.load(checkpoint)
    demo = start_app(model.warm_up(), examples)
    yield demo.local_url
    demo.close()


def caption_and_wait(page, previous: str = "", button: str = "Caption") -> str:
    if button:
        page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_function("([old]) => { const t = document.querySelector('#caption textarea');"
                           " return t && t.value && t.value !== old; }", arg=[previous], timeout=60_000)
    return page.input_value("#caption textarea")


def click_example(page, index: int, previous: str = "") -> str:
    """An example clicked captions it at once (no second click); -> the caption."""
    examples = page.locator("#examples button.gallery-item")
    example = examples.last if index == -1 else examples.nth(index)
    example.scroll_into_view_if_needed()
    example.click()
    return caption_and_wait(page, previous, button="")


def selected_label(page) -> str:
    return page.locator("#selected label").first.inner_text()


def wait_selected(page, text: str) -> None:
    page.wait_for_function("([text]) => { const l = document.querySelector('#selected label');"
                           " return l && l.innerText.includes(text); }", arg=[text], timeout=30_000)


IN_VIEW = ("s => { const r = document.querySelector(s).getBoundingClientRect();"
           " return r.top >= -1 && r.bottom <= window.innerHeight + 1; }")


def download_links(page) -> list:
    return page.eval_on_selector_all("#figure-file a[data-testid='download-link'], "
                                     "#gif-file a[data-testid='download-link']", "as => as.map(a => a.href)")


def test_desktop_examples_caption_in_view_words_inspectable(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.locator("#honest").get_by_text("What this model knows").wait_for(timeout=30_000)   # honest up front
    page.locator("#examples img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    alts = page.eval_on_selector_all("#examples img", "imgs => imgs.map(i => i.alt)")
    assert alts and all(alt.startswith("Example: ") for alt in alts)
    first = click_example(page, 0)                                            # a real photo (the README's picture)
    page.wait_for_function(IN_VIEW, arg="#caption", timeout=10_000)          # not above the window
    words = first.split()
    overlays = page.locator("#words img")
    overlays.first.wait_for(timeout=30_000)
    assert overlays.count() == len(words)
    wait_selected(page, f"\u201c{words[0]}\u201d")                            # the selected word is named
    assert "probability" in selected_label(page)
    tiles = page.eval_on_selector_all("#words button.thumbnail-item", "bs => bs.map(b => b.getAttribute('aria-label'))")
    assert [t.split(" (")[0] for t in tiles] == words                         # tiles named by their word
    overlays.last.click()
    wait_selected(page, f"\u201c{words[-1]}\u201d")
    page.locator("#confidence .token").first.click()                          # a confidence chip
    wait_selected(page, f"\u201c{words[0]}\u201d")
    if len(words) > 1:                                                        # a word picked in the caption
        page.eval_on_selector("#caption textarea", "(t, a) => { t.focus(); t.setSelectionRange(a[0], a[1]);"
                              " t.dispatchEvent(new Event('select')); }", [len(words[0]) + 1, len(words[0]) + 2])
        wait_selected(page, f"\u201c{words[1]}\u201d")
    page.locator("#gif-file a[data-testid='download-link']").wait_for(timeout=30_000)
    old = download_links(page)
    assert len(old) == 2 and old[0].endswith(".png") and old[1].endswith(".gif")
    page.wait_for_function("() => Array.from(document.querySelectorAll(\"#gif-file a[data-testid='download-link']\"))"
                           ".every(a => (a.getAttribute('aria-label') || '').startsWith('Download '))", timeout=10_000)
    if TAKE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "desktop.png"), full_page=True)
    click_example(page, len(alts) - 1, first)                                 # a new caption: ...
    assert not set(download_links(page)) & set(old)                           # ... never the old files
    page.get_by_role("button", name="About the model").click()
    text = page.locator("body").inner_text()
    assert "/tmp" not in text and "--checkpoint" not in text                  # no server paths
    page.close()


SEED_SHOWN = "([old]) => { const seed = /Seed (\\d+)/.exec(document.querySelector('#note').innerText); "


def test_sampling_is_random_when_the_seed_is_empty_and_says_its_seed(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    click_example(page, 0)
    page.get_by_text("Sampling", exact=True).click()
    seed_box = page.locator("#seed textarea, #seed input").first
    seed_box.wait_for(timeout=10_000)
    assert seed_box.input_value() == ""
    seeds, captions = [], []
    for _ in range(3):           # each press draws a new seed (a repeated one times out here)
        page.get_by_role("button", name="Caption", exact=True).click()
        page.wait_for_function(SEED_SHOWN + "return seed && !old.includes(seed[1]); }", arg=[seeds], timeout=60_000)
        page.wait_for_timeout(300)
        seeds.append(page.evaluate(SEED_SHOWN + "return seed[1]; }", [seeds]))
        captions.append(page.input_value("#caption textarea"))
    assert len(set(seeds)) == 3 and seed_box.input_value() == ""
    seed_box.fill(seeds[0])                                                    # the seed shown repeats it
    page.get_by_role("button", name="Caption", exact=True).click()
    page.wait_for_function("([seed]) => document.querySelector('#note').innerText.includes('Seed ' + seed)",
                           arg=[seeds[0]], timeout=60_000)
    assert page.input_value("#caption textarea") == captions[0]
    page.close()


def test_errors_show_by_the_input_and_keep_the_previous_result(browser, page_url, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    first = click_example(page, 0)
    page.locator("#words img").first.wait_for(timeout=30_000)
    fake = tmp_path / "photo.png"
    fake.write_text("this is not a picture")
    page.locator("input[type=file]").first.set_input_files(str(fake))
    error = page.locator("#error")
    error.get_by_text("Not an image").wait_for(timeout=30_000)               # said at once, by the input
    page.wait_for_function("() => !document.querySelector('#image img')", timeout=10_000)   # no broken picture
    page.get_by_role("button", name="Caption", exact=True).click()
    error.get_by_text("upload an image").wait_for(timeout=30_000)
    assert page.input_value("#caption textarea") == first                     # the previous result stays
    assert page.locator("#words img").count() == len(first.split())
    assert not page.locator(".toast-body").count()                            # no fading toast only
    page.close()


def test_compare_decodings_and_inspect_any_row(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    click_example(page, 1)
    page.get_by_role("button", name="Compare decodings", exact=True).click()
    table = page.locator("#captions")
    page.wait_for_function("() => { const t = document.querySelector('#captions');"
                           " return t && t.offsetParent !== null && t.innerText.includes('greedy'); }", timeout=60_000)
    text = table.inner_text()
    assert "beam" in text and "sample" in text and "log-prob." in text
    last = page.evaluate("() => Math.max(...Array.from(document.querySelectorAll('#captions [data-testid^=\\'cell-\\']'))"
                         ".map(c => +c.dataset.testid.split('-')[1]))")
    cell = lambda column: table.get_by_test_id(f"cell-{last}-{column}").first
    label, caption = cell(0).inner_text(), cell(1).inner_text()
    cell(0).click()                                              # the least likely caption, inspected
    page.wait_for_function("([label]) => document.querySelector('#confidence label').innerText.includes(label)",
                           arg=[f"({label.strip()})"], timeout=30_000)
    assert page.input_value("#caption textarea").startswith(caption.strip())   # the caption box follows
    page.close()


def test_on_a_phone_the_first_examples_are_in_view_as_the_page_opens(browser, page_url):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page.goto(page_url)
    page.locator("#honest").get_by_text("real photos it never saw").wait_for(timeout=30_000)  # the shipped line
    page.locator("#examples img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    assert page.evaluate(IN_VIEW, "#examples img"), page.eval_on_selector("#examples img", "i => i.getBoundingClientRect().bottom")
    page.close()


def test_phone_width_layout(browser, page_url):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page.goto(page_url)
    caption = click_example(page, -1)                             # the last example (a long scene caption)
    assert caption.strip()
    page.locator("#words img").first.wait_for(timeout=30_000)
    page.locator("#gif-file a[data-testid='download-link']").wait_for(timeout=30_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400                                           # nothing forces sideways scrolling
    tiles = page.eval_on_selector_all("#words img", "is => is.map(i => i.getBoundingClientRect().right)")
    assert len(tiles) == len(caption.split()) and max(tiles) <= 390   # every word's tile reachable
    cut = page.eval_on_selector_all("#words .caption-label", "ls => ls.filter(l => l.scrollWidth > l.clientWidth + 1).length")
    assert cut == 0                                               # labels whole, not "picture (0…"
    covered = page.eval_on_selector_all("#words button.thumbnail-item", "bs => bs.filter(b => b.querySelector("
                                        "'.caption-label').getBoundingClientRect().top < "
                                        "b.querySelector('img').getBoundingClientRect().bottom - 1).length")
    assert covered == 0                                           # under their pictures, not over them
    last = page.locator("#words button.thumbnail-item").last
    last.scroll_into_view_if_needed()
    last.click()                                                  # a word tapped: its large view comes into sight
    wait_selected(page, caption.split()[-1])
    page.wait_for_function(IN_VIEW, arg="#selected", timeout=10_000)
    if TAKE_SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "phone.png"), full_page=True)
    page.close()


def test_a_file_that_is_no_image_is_refused_next_to_the_input_not_only_in_a_toast(browser, page_url, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.get_by_role("button", name="Caption", exact=True).click()
    page.locator("#error").get_by_text("upload an image").wait_for(timeout=30_000)   # an earlier message
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.locator("#image input[type=file]").first.set_input_files(str(notes))
    refusal = page.locator("#type-error[role=alert]")
    refusal.get_by_text("\u201cnotes.txt\u201d is not an image").wait_for(timeout=10_000)
    assert not page.locator("#error").is_visible()                # the earlier, unrelated message is gone
    click_example(page, 0)                                        # what comes next replaces it
    page.wait_for_function("() => { const b = document.querySelector('#type-error'); return !b || b.hidden; }",
                           timeout=30_000)
    page.close()


AXE = Path(os.sys.prefix) / "axe-core" / "axe.min.js"   # `make test` fetches axe-core 4.14.1 (npm) there
AXE_RUN = ("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
           ".filter(v => v.impact === 'critical' || v.impact === 'serious')"
           ".map(v => `${v.impact} ${v.id}: ${v.nodes.length} x ${v.nodes[0].html.slice(0, 120)}`)")


@pytest.mark.parametrize("width, height, scheme", [(1280, 900, "light"), (1280, 900, "dark"),
                                                   (390, 844, "light"), (390, 844, "dark")])
def test_no_critical_or_serious_accessibility_violation_before_or_after_a_caption(browser, page_url, width,
                                                                                   height, scheme):
    if not AXE.is_file():
        pytest.skip(f"{AXE} is missing: `make test` fetches axe-core with npm")
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                  is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    page.goto(f"{page_url}?__theme={scheme}")
    page.wait_for_selector("#caption textarea")
    page.add_script_tag(path=str(AXE))
    before = page.evaluate(AXE_RUN)
    click_example(page, 0)
    page.locator("#words img").first.wait_for(timeout=30_000)
    page.locator("#selected img").first.wait_for(timeout=30_000)
    # Scanned once the buttons held meanwhile are back, their colours no longer fading in.
    page.wait_for_function("() => !document.querySelector('#fetch').disabled && !document.getAnimations()"
                           ".some(a => a.effect && a.effect.target && a.effect.target.closest('button'))",
                           timeout=30_000)
    after = page.evaluate(AXE_RUN)
    context.close()
    assert before == [] and after == [], (before, after)


EDITORS = ("() => Array.from(document.querySelectorAll('#captions input, #captions textarea, #captions [contenteditable],"
           " #captions .selection-button, #captions .cell-menu-button')).filter(e => e.offsetParent !== null).length")


def test_the_captions_table_is_read_only_and_its_rows_can_be_picked(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    click_example(page, 1)
    page.get_by_role("button", name="Compare decodings", exact=True).click()
    page.wait_for_function("() => { const t = document.querySelector('#captions');"
                           " return t && t.offsetParent !== null && t.innerText.includes('greedy'); }", timeout=60_000)
    table = page.locator("#captions")
    # Each caption is one row, however many decodings wrote it: the samples may all agree with greedy.
    last = page.evaluate("() => Math.max(...[...document.querySelectorAll('#captions [data-testid^=\"cell-\"]')]"
                         ".map(cell => +cell.dataset.testid.split('-')[1]))")
    cell = table.get_by_test_id(f"cell-{last}-1").first
    text = cell.inner_text()
    cell.click()
    label = table.get_by_test_id(f"cell-{last}-0").first.inner_text().strip()
    page.wait_for_function("([label]) => document.querySelector('#confidence label').innerText.includes(label)",
                           arg=[f"({label})"], timeout=30_000)                  # the row is picked ...
    assert page.evaluate(EDITORS) == 0                                          # ... with no handles on it
    cell.dblclick()
    page.keyboard.type("edited")
    page.wait_for_timeout(300)
    assert page.evaluate(EDITORS) == 0 and cell.inner_text() == text            # nor an editor
    page.close()


CHECKED = "() => document.querySelector('input[type=radio]:checked').value"


def test_arrow_keys_move_the_decoding_choice_like_any_radio_group(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.get_by_role("button", name="Compare decodings", exact=True).focus()
    for _ in range(30):                                                          # by the keyboard only
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.type === 'radio'"):
            break
    assert page.evaluate("() => document.activeElement.value") == "greedy"     # the group is one stop
    for key, choice in (("ArrowRight", "sample"), ("ArrowRight", "beam"), ("ArrowLeft", "sample"),
                        ("ArrowDown", "beam"), ("ArrowUp", "sample")):
        page.keyboard.press(key)
        page.wait_for_function(f"() => ({CHECKED})() === '{choice}' && document.activeElement.value === '{choice}'",
                               timeout=10_000)
    page.locator("#seed").wait_for(timeout=10_000)                              # the page follows: sampling's seed
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.type") != "radio"        # Tab leaves the group
    page.close()


def test_about_the_model_is_short_tells_the_recorded_figures_and_opens_the_full_card(browser, page_url):
    record = json.loads((app.EXAMPLES.parent / "model" / cards.RECORD).read_text())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.get_by_role("button", name="About the model").click()
    about = page.locator("#about")
    about.get_by_text("How often it is right").wait_for(timeout=10_000)
    text = about.inner_text()
    assert len(text) <= cards.PANEL_CHARS, len(text)
    photos = record["validation_photos"]
    assert f"names the main subject of {100 * photos['not_calibrated_main_subject_recall']:.0f}%" in text
    assert f"finds {100 * record['figures']['object_recall']:.0f}% of the objects" in text
    page.get_by_role("button", name="The full model card (model_card.md)").click()
    title = page.locator("#full-card").get_by_text("Captioner default model")   # the checkpoint's card, on asking
    title.wait_for(timeout=10_000)
    assert "What it is" in page.locator("#full-card").inner_text()
    page.close()


ASKERS = ["#caption-button", "#compare-button", "#fetch", "#url textarea"]
WATCH_ASKERS = """(askers) => { window.held = []; const button = document.querySelector(askers[0]);
  new MutationObserver(() => window.held.push({held: askers.map(s => document.querySelector(s).disabled),
                                               caption: document.querySelector('#caption textarea').value,
                                               error: (document.querySelector('#error') || {}).innerText || ''}))
    .observe(button, {attributes: true, attributeFilter: ['disabled']}); }"""


def held_then_released(page) -> list:
    """What the page showed when the Caption button was held, then released (WATCH_ASKERS)."""
    page.wait_for_function("() => window.held.length >= 2 && !document.querySelector('#caption-button').disabled",
                           timeout=60_000)
    held = page.evaluate("window.held")
    assert held[0]["held"] == [True] * len(ASKERS) and held[-1]["held"] == [False] * len(ASKERS), held
    return held


def test_the_buttons_are_held_while_a_caption_is_worked_on_and_released_after_even_an_error(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.locator("#examples img").first.wait_for(timeout=30_000)
    page.evaluate(WATCH_ASKERS, ASKERS)
    page.get_by_role("button", name="Caption", exact=True).click()             # no image: an error
    held = held_then_released(page)
    assert held[0]["error"] == "" and "upload an image" in held[-1]["error"]   # held until the answer came
    page.evaluate(WATCH_ASKERS, ASKERS)
    caption = click_example(page, 0)
    held = held_then_released(page)
    assert held[0]["caption"] == "" and held[-1]["caption"] == caption
    page.evaluate(WATCH_ASKERS, ASKERS)
    url = page.locator("#url textarea")
    url.fill("http://127.0.0.1:1/picture.png")
    url.press("Enter")                                                         # the keyboard's way: the same
    held = held_then_released(page)
    assert "not allowed" not in held[0]["error"] and "not allowed" in held[-1]["error"]
    page.wait_for_function("() => document.activeElement === document.querySelector('#url textarea')",
                           timeout=10_000)                                      # the focus comes back
    assert page.input_value("#caption textarea") == caption
    page.close()


LAYOUT_SHIFTS = """window.shifts = [];
new PerformanceObserver(list => list.getEntries().forEach(e => { if (!e.hadRecentInput)
  window.shifts.push([e.startTime, e.value]); })).observe({type: 'layout-shift', buffered: true});"""
# Cumulative Layout Shift: the largest burst of shifts (less than 1 s apart, 5 s at most).
CLS = """() => { let most = 0, burst = 0, first = -1e9, last = -1e9;
  for (const [t, v] of window.shifts) {
    if (t - last > 1000 || t - first > 5000) { burst = 0; first = t; }
    burst += v; last = t; most = Math.max(most, burst);
  }
  return most; }"""


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_page_does_not_jump_as_it_loads_refuses_and_captions(browser, page_url, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500,
                                  has_touch=width < 500)
    page = context.new_page()
    page.add_init_script(LAYOUT_SHIFTS)
    page.goto(page_url)
    page.locator("#examples img").first.wait_for(timeout=30_000)
    top = page.locator("#url").bounding_box()["y"]
    page.get_by_role("button", name="Caption", exact=True).click()
    page.locator("#error").get_by_text("upload an image").wait_for(timeout=30_000)
    assert page.locator("#url").bounding_box()["y"] == top                     # the refusal pushes nothing down
    click_example(page, 0)
    page.locator("#gif-file a[data-testid='download-link']").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    shift = page.evaluate(CLS)
    context.close()
    assert shift < 0.05, shift
