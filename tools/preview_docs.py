#!/usr/bin/env python
"""Build an offline HTML preview of the book into `_docs_preview/` (Quarto-free; `nbdev_docs` builds the real site)."""
# Steps: optionally execute a few notebooks into a scratch copy (never touching `nbs/`), run nbdev 2.4's docs
# processing on every notebook (the processors `nbdev_proc_nbs` applies: frontmatter from the `# Title` cell, `#| hide`,
# `show_doc` for exports, ...), then render the processed notebooks with smalldocs, which reads `nbs/_quarto.yml`
# (sidebar order, theme, `styles.css`). Open `_docs_preview/index.html` in a browser.
# Unlike the `nbdev_proc_nbs` command, this does not try to install Quarto, does not rewrite `nbs/nbdev.yml` or
# `gesthand/_modidx.py`, writes nothing outside the output folder, and keeps going when one notebook fails to process
# (that notebook is rendered without its `show_doc` output and reported; `--strict` makes it an error).
from __future__ import annotations
import argparse, os, shutil, sys, time, traceback, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / '_docs_preview'


def notebooks(nbs: Path) -> list[Path]:
    "Notebooks nbdev renders: `*.ipynb` under `nbs`, skipping names and folders that start with `_` or `.`"
    return sorted(p for p in nbs.rglob('*.ipynb')
                  if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts))


def execute(src: Path, dst: Path, timeout: int = 600) -> Path:
    "Execute the notebook `src` in its own folder into `dst`, skipping `nbdev_export()` cells so `gesthand/` is untouched"
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'code' and 'nbdev_export(' in cell.source: cell.source = ''
    backend = os.environ.pop('MPLBACKEND', None)  # a non-inline backend in the kernel's environment would drop every figure
    try: NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(src.parent)}}).execute()
    finally:
        if backend is not None: os.environ['MPLBACKEND'] = backend
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


def _one_line(e: BaseException) -> str:
    "The root cause of `e` as `Type: message` on one line"
    while e.__cause__ is not None: e = e.__cause__
    return f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'


def process(src: Path, dst: Path) -> str | None:
    "Run nbdev's docs processors on `src` into `dst`; on failure retry without executing cells and return the error"
    from execnb.nbio import read_nb, write_nb
    from nbdev.processors import FilterDefaults, exec_show_docs

    class NoExec(FilterDefaults):
        "nbdev's processors without `exec_show_docs` (no cell is run, so `show_doc` cells stay empty)"
        def base_procs(self): return [p for p in super().base_procs() if p is not exec_show_docs]

    dst.parent.mkdir(parents=True, exist_ok=True)
    os.environ['IN_TEST'] = '1'  # as nbdev.serve_drv does
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Found cells containing imports')
            nb = read_nb(src); FilterDefaults()(nb)
        write_nb(nb, dst)
        return None
    except Exception as e:
        err = str(e).splitlines()[0] + f' ({_one_line(e)})'
        nb = read_nb(src); NoExec()(nb)
        write_nb(nb, dst)
        return err
    finally:
        os.environ.pop('IN_TEST', None)


def nbdev_yml() -> str:
    "The `nbdev.yml` that `nbdev_docs` would generate from `settings.ini`, with output into `_site`"
    from nbdev.config import get_config
    from nbdev.quarto import _nbdev_yml
    cfg = get_config()
    vals = {k: cfg.get(k, '') for k in ['title', 'description', 'branch', 'git_url', 'doc_host', 'doc_baseurl']}
    vals['title'] = vals['title'] or cfg.lib_name
    return _nbdev_yml.format(doc_path='_site', **vals)


def build(out: Path = DEFAULT_OUT, execute_nbs: tuple[str, ...] = (), only: tuple[str, ...] = (),
          strict: bool = False, quiet: bool = False) -> dict[str, str]:
    "Build the preview into `out`; return {notebook: error} for notebooks rendered without their `show_doc` output"
    try: from smalldocs.site import build as render
    except ImportError: sys.exit('preview_docs: smalldocs is missing; install the dev extra: pip install -e ".[dev]"')
    os.chdir(ROOT)
    nbs = ROOT / 'nbs'
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    all_nbs = notebooks(nbs)
    names = {p.stem for p in all_nbs}
    unknown = [n for n in (*execute_nbs, *only) if n not in names]
    if unknown: sys.exit(f'preview_docs: no notebook named {", ".join(unknown)} in {nbs}')
    if out.exists():
        if any(out.iterdir()) and not (out / '_build').is_dir():
            sys.exit(f'preview_docs: {out} is not empty and is not a previous preview; give another --out')
        shutil.rmtree(out)
    work, proc = out / '_build', out / '_build' / 'proc'
    proc.mkdir(parents=True)
    for f in ['_quarto.yml', 'styles.css']:
        if (nbs / f).exists(): shutil.copy2(nbs / f, proc / f)
    (proc / 'nbdev.yml').write_text(nbdev_yml())
    failed = {}
    for nb in all_nbs:
        if only and nb.stem not in only: continue
        rel, t = nb.relative_to(nbs), time.time()
        src = execute(nb, work / 'executed' / rel) if nb.stem in execute_nbs else nb
        err = process(src, proc / rel)
        if err: failed[str(rel)] = err
        say(f'{rel}: {"executed, " if nb.stem in execute_nbs else ""}processed in {time.time() - t:.1f}s'
            + (f'; DOCS PROCESSING FAILED, rendered without show_doc output: {err}' if err else ''))
    site = render(proc, quiet=True)
    shutil.copytree(proc / '_site', out, dirs_exist_ok=True); shutil.rmtree(proc / '_site')
    for w in site.warnings:
        if 'broken link' in w and only: continue  # pages left out by --only
        if not w.startswith(('format commonmark', 'format.html.keep-md')) and 'output-file' not in w: say(f'smalldocs: {w}')
    say(f'wrote {len(site.pages)} page(s); open {out / "index.html"}')
    if failed:
        print(f'preview_docs: {len(failed)} notebook(s) failed nbdev docs processing (nbdev_docs would fail on them too):',
              *[f'  {k}: {v}' for k, v in failed.items()], sep='\n', file=sys.stderr)
        if strict: sys.exit(1)
    return failed


def main(argv=None):
    "Command line: see --help"
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', type=Path, default=DEFAULT_OUT, help='output folder (emptied first; default: _docs_preview)')
    ap.add_argument('--execute', nargs='*', default=[], metavar='NAME',
                    help='notebooks (stems, e.g. 00_gestures index) to execute before rendering, into the preview folder')
    ap.add_argument('--only', nargs='*', default=[], metavar='NAME', help='render only these notebooks (stems)')
    ap.add_argument('--strict', action='store_true', help='exit 1 if a notebook fails nbdev docs processing')
    ap.add_argument('-q', '--quiet', action='store_true', help='print only problems')
    a = ap.parse_args(argv)
    build(a.out.resolve(), tuple(a.execute), tuple(a.only), a.strict, a.quiet)


if __name__ == '__main__': main()
