"""The offline book preview (`tools/preview_docs.py`) builds, and its pages render in headless Chromium."""
import base64, io, json, re, shutil, subprocess, sys, warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / '_docs_preview'
SHOTS = OUT / 'screenshots'
EXECUTE = ('00_gestures', 'index')  # cheap notebooks executed for the preview, so figures and tables exist
CHROMIUM = shutil.which('chromium')


def sidebar_stems(items) -> list[str]:
    "Notebook stems of `website.sidebar.contents` in `nbs/_quarto.yml`, in reading order"
    out = []
    for it in items:
        if isinstance(it, str): out.append(Path(it).stem)
        elif isinstance(it, dict):
            if 'href' in it: out.append(Path(it['href']).stem)
            out += sidebar_stems(it.get('contents', []))
    return out


CHAPTERS = sidebar_stems(yaml.safe_load((ROOT / 'nbs' / '_quarto.yml').read_text())['website']['sidebar']['contents'])


def nb_title(name: str) -> str:
    "The `# Title` of the first markdown cell of `nbs/<name>.ipynb`"
    nb = json.loads((ROOT / 'nbs' / f'{name}.ipynb').read_text())
    first_md = next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    return re.match(r'#\s+(.+)', first_md).group(1).strip()


class Page(HTMLParser):
    "What the tests need from a page: title, h1, sidebar links, tags counted in the main content, image sources"
    def __init__(self, html: str):
        super().__init__()
        self.title = self.h1 = ''
        self.sidebar, self.main_tags, self.imgs = [], {}, []
        self._stack, self._in = [], set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ('br', 'img', 'meta', 'link', 'input', 'hr', 'source', 'wbr', 'col', 'area', 'base', 'embed'):
            self._tag(tag, a); return
        marks = {m for m, hit in [('title', tag == 'title'), ('h1', tag == 'h1' and 'title' in a.get('class', '')),
                                  ('sidebar', a.get('id') == 'quarto-sidebar'), ('main', tag == 'main'),
                                  ('link', tag == 'a' and 'href' in a and 'sidebar' in self._in)] if hit}
        self._stack.append((tag, marks)); self._in |= marks
        self._tag(tag, a)
        if 'link' in marks: self.sidebar.append([a['href'], ''])

    def _tag(self, tag, a):
        if 'main' in self._in:
            self.main_tags[tag] = self.main_tags.get(tag, 0) + 1
            if tag == 'img': self.imgs.append(a.get('src', ''))

    def handle_endtag(self, tag):
        if tag not in (t for t, _ in self._stack): return  # a void or stray end tag
        while self._stack.pop()[0] != tag: pass  # also closes elements left open inside it
        self._in = set().union(*(m for _, m in self._stack))

    def handle_data(self, data):
        if 'title' in self._in: self.title += data
        if 'h1' in self._in: self.h1 += data
        if 'link' in self._in: self.sidebar[-1][1] += data.strip()


def chromium(*args, timeout=90) -> subprocess.CompletedProcess:
    "Run headless Chromium with `args`"
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--mute-audio',
           f'--user-data-dir={OUT / "_build" / "chromium-profile"}', *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dom(name: str) -> Page:
    "The page `name`.html as Chromium renders it (the DOM after load)"
    r = chromium('--virtual-time-budget=2000', '--dump-dom', (OUT / f'{name}.html').as_uri())
    assert r.returncode == 0 and '<html' in r.stdout, f'chromium --dump-dom failed for {name}: {r.stderr[-2000:]}'
    return Page(r.stdout)


def outputs(name: str) -> set[str]:
    "Kinds of outputs ('image', 'table') in the processed notebook `name` the page was rendered from"
    nb = json.loads((OUT / '_build' / 'proc' / f'{name}.ipynb').read_text())
    kinds = set()
    for cell in nb['cells']:
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            if any(k.startswith('image/') for k in data): kinds.add('image')
            if '<table' in ''.join(data.get('text/html', '')): kinds.add('table')
    return kinds


@pytest.fixture(scope='module')
def built():
    "Build the preview of the sidebar chapters once (executing only the cheap notebooks); return the script's stderr"
    if sys.version_info < (3, 11): pytest.importorskip('smalldocs', reason='smalldocs (the preview renderer) needs Python 3.11+')
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'preview_docs.py'), '-q', '--execute', *EXECUTE,
                        '--only', *dict.fromkeys([*EXECUTE, *CHAPTERS])],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'preview_docs.py failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    if 'failed nbdev docs processing' in r.stderr:  # rendered anyway; nbdev_docs would stop on these notebooks
        warnings.warn(r.stderr[r.stderr.index('preview_docs:'):])
    return r.stderr


def test_preview_files(built):
    "Every sidebar chapter has a page with its notebook's `# Title`, and executed figures and tables are in the HTML"
    for name in dict.fromkeys([*EXECUTE, *CHAPTERS]):
        assert Page((OUT / f'{name}.html').read_text()).h1.strip() == nb_title(name), name
    assert {'image', 'table'} <= outputs('00_gestures'), 'executing 00_gestures gave no figure or no table'
    html = (OUT / '00_gestures.html').read_text()
    assert '<img src="data:image/png;base64,' in html and '<table' in html, '00_gestures.html lacks its figure or table'


def api_headings(name: str) -> list[str]:
    "The names that `show_doc` headings of the built page `name`.html document, in page order"
    return re.findall(r'<h3 id="[^"]*" class="anchored"[^>]*>([\w.]+)\s*<', (OUT / f'{name}.html').read_text())


def test_api_documented_once(built):
    "Each chapter documents a name once: nbdev already shows the `@patch` methods, so an extra `show_doc` repeats them"
    for name in CHAPTERS:
        headings = api_headings(name)
        repeated = sorted({h for h in headings if headings.count(h) > 1})
        assert not repeated, f'{name}.html documents {repeated} more than once'
    assert 'PoseEvaluator.update' in api_headings('10_metrics')


@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (apt-get install chromium); .ci/run installs it')
def test_index_in_browser(built):
    "The index page shows the book title and a sidebar that links every chapter in `_quarto.yml` order, by title"
    page = dom('index')
    assert page.h1.strip() == 'gesthand' and 'gesthand' in page.title
    hrefs = [h for h, _ in page.sidebar if h.endswith('.html')]
    chapters = [Path(h).stem for h in hrefs if Path(h).stem != 'index']
    assert chapters == [c for c in CHAPTERS if c != 'index'], hrefs
    titles = dict((Path(h).stem, t) for h, t in page.sidebar)
    assert titles == {c: nb_title(c) for c in CHAPTERS} | {'index': 'gesthand'}, f'sidebar link texts: {titles}'
    for h in hrefs: assert (OUT / h).exists(), f'sidebar links a missing page {h}'
    assert page.main_tags.get('table'), 'the index has no results table'
    html = (OUT / 'index.html').read_text()
    assert all(f'C{k} (' in html for k in (1, 2, 3)), 'the index does not state the claims C1-C3'
    assert 'Gesture ceiling' in html, 'the index does not state the gesture ceiling'


@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (apt-get install chromium); .ci/run installs it')
@pytest.mark.parametrize('name', [c for c in CHAPTERS if c != 'index'])
def test_chapter_in_browser(built, name):
    "A chapter page has its title, an <img> for each notebook figure kind and a <table> for a pandas table"
    page = dom(name)
    assert page.h1.strip() and page.h1.strip() in page.title, (page.h1, page.title)
    assert page.main_tags.get('p', 0) > 0, f'{name}: no prose in the main content'
    kinds = outputs(name)
    if 'image' in kinds:
        assert page.imgs, f'{name}: the notebook has figure outputs but the page has no <img>'
        from PIL import Image
        for src in page.imgs:
            if src.startswith('data:image/png;base64,'):
                w, h = Image.open(io.BytesIO(base64.b64decode(src.split(',', 1)[1]))).size
                assert w > 50 and h > 50, f'{name}: tiny embedded image {w}x{h}'
    if 'table' in kinds: assert page.main_tags.get('table', 0) > 0, f'{name}: pandas table output but no <table>'
    if name == '00_gestures': assert {'image', 'table'} <= kinds and page.imgs and page.main_tags.get('table')


@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (apt-get install chromium); .ci/run installs it')
@pytest.mark.parametrize('name,height', [('index', 2000), ('00_gestures', 2000), ('00_gestures', 6000), ('tables', 3000), ('figures', 8000)])
def test_screenshot(built, name, height):
    "A screenshot (saved under `_docs_preview/screenshots/`) shows a page, not a blank or broken one"
    from PIL import Image
    SHOTS.mkdir(parents=True, exist_ok=True)
    png = SHOTS / f'{name}-{height}.png'
    png.unlink(missing_ok=True)
    r = chromium(f'--screenshot={png}', f'--window-size=1280,{height}', (OUT / f'{name}.html').as_uri())
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    im = Image.open(png).convert('RGB')
    assert im.size == (1280, height)
    import numpy as np
    px = np.asarray(im.resize((320, height // 4))).reshape(-1, 3).astype(int)
    ink = (px.sum(1) < 600).mean()  # anything visibly darker than white
    assert 0.02 < ink < 0.6, f'{png.name}: {ink:.1%} of the page is non-white; blank or broken page?'
    colours = len(np.unique(px, axis=0))
    assert colours > 100, f'{png.name}: only {colours} colours; blank or broken page?'
    top = np.asarray(im.crop((0, 0, 1280, 30))).reshape(-1, 3).astype(int)  # the navbar: the theme's primary colour
    assert (top.sum(1) < 600).mean() > 0.9, f'{png.name}: no navbar at the top'
