"""`tools/run_experiments.py --dry_run`: which runs it would start, which it skips because their results exist, and
the parameters it gives the book notebooks."""
import importlib.util, shlex, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def run_experiments():
    spec = importlib.util.spec_from_file_location('run_experiments', ROOT / 'tools' / 'run_experiments.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def planned(capsys) -> list[list[str]]:
    "The command lines a dry run printed"
    return [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith('$ ')]


def params_of(command: list[str]) -> dict:
    "The papermill -p parameters of `command`"
    return {command[i + 1]: command[i + 2] for i, arg in enumerate(command) if arg == '-p'}


def test_dry_run_skips_finished_runs_and_orders_by_seed(run_experiments, tmp_path, capsys):
    (tmp_path / 'book-ours-stage2-seed0.json').write_text('{}')
    status = run_experiments.main(['--dry_run', '--no-book', '--experiments', 'ours', 'baseline', '--seeds', '0', '1',
                                   '--results_dir', str(tmp_path), '--runs_dir', str(tmp_path / 'runs'), '--param', 'epochs=1'])
    assert status == 0
    commands = planned(capsys)
    runs = [(p['name'], p['seed']) for p in map(params_of, commands)]
    assert runs == [('baseline', '0'), ('ours', '1'), ('baseline', '1')]  # ours seed 0 has results already
    assert all(c[1:4] == ['-m', 'papermill', str(ROOT / 'nbs' / 'train_stage2.ipynb')] for c in commands)
    assert all(params_of(c)['epochs'] == '1' and params_of(c)['results_dir'] == str(tmp_path) for c in commands)
    assert commands[0][4] == str(tmp_path / 'runs' / 'notebooks' / 'book-baseline-seed0.ipynb')
    assert not (tmp_path / 'book-baseline-stage2-seed0.json').exists()  # nothing ran


def test_dry_run_ablations_only_for_their_seeds(run_experiments, tmp_path, capsys):
    from gesthand.experiment import ABLATIONS
    run_experiments.main(['--dry_run', '--no-book', '--experiments', 'ours', '--ablations', '--seeds', '0', '1',
                          '--ablation_seeds', '0', '--results_dir', str(tmp_path)])
    runs = [(p['name'], p['seed']) for p in map(params_of, planned(capsys))]
    assert runs == [('ours', '0'), *[(name, '0') for name in ABLATIONS], ('ours', '1')]


def test_dry_run_book_notebooks_get_only_the_parameters_that_differ(run_experiments, tmp_path, capsys):
    run_experiments.main(['--dry_run', '--experiments', 'ours', '--seeds', '2', '--results_dir', str(tmp_path)])
    tables, clean_tables, figures, clean_figures = planned(capsys)[1:]
    assert tables[3:5] == [str(ROOT / 'nbs' / 'tables.ipynb')] * 2 and tables[-2:] == ['--cwd', str(ROOT / 'nbs')]
    assert '-y' in tables and '{"ablation_seeds": [2]}' in tables and params_of(tables) == {'results_dir': str(tmp_path)}
    assert params_of(figures) == {'results_dir': str(tmp_path), 'seed': '2'}
    assert clean_tables[-2:] == ['--fname', str(ROOT / 'nbs' / 'tables.ipynb')] and clean_figures[-1].endswith('figures.ipynb')


def test_param_without_equals_is_refused(run_experiments):
    with pytest.raises(SystemExit, match="KEY=VALUE, got 'epochs'"):
        run_experiments.main(['--dry_run', '--param', 'epochs'])


def test_dry_run_summary_says_what_would_run(run_experiments, tmp_path, capsys):
    run_experiments.main(['--dry_run', '--no-book', '--experiments', 'ours', '--seeds', '0', '--results_dir', str(tmp_path),
                          '--runs_dir', str(tmp_path / 'runs')])
    summary = capsys.readouterr().out.split('Summary')[1]
    assert 'would run' in summary and 'done' not in summary  # nothing ran, so nothing is reported done
