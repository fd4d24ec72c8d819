"""Fault list, code side (trust issue, items 1-4): no code runs from a MANO file or a checkpoint, `convert-mano` writes a
folder, a run never resumes a checkpoint of other settings, and experiment names and overrides are checked."""
import builtins
import os
import pickle
import pickletools
import re
import subprocess
import sys
import types
from pathlib import Path

import papermill as pm
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from gesthand.cli import main
from gesthand.experiment import EXPERIMENTS, experiment_config, train_stage2
from gesthand.mano import MANO_ENV, ManoHand, UnsafePickleError, mano_dir, read_mano_pickle, synthetic_mano_dir
from gesthand.files import load_checkpoint
from gesthand.training import TrainConfig, Trainer

GESTHAND = str(Path(sys.executable).parent / 'gesthand')  # the console script installed with the package
NBS = Path(__file__).parents[1] / 'nbs'
SIDES = ('MANO_RIGHT.pkl', 'MANO_LEFT.pkl')


class Touch:
    "Pickles as a call of `os.system` that creates `marker`: plain `pickle.load` of it runs a shell command"
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


class OpenFile:
    "Pickles as a call of `open(marker, 'w')`: plain `pickle.load` of it creates the file"
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (builtins.open, (str(self.marker), 'w'))


class Eval:
    "Pickles as a call of `eval`: plain `pickle.load` of it runs Python that creates the file"
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (builtins.eval, (f'open({str(self.marker)!r}, "w")',))


@pytest.fixture(scope='module')
def arrays():
    "The synthetic hand's valid MANO arrays"
    return {name: read_mano_pickle(synthetic_mano_dir() / name) for name in SIDES}


def write_mano_folder(folder: Path, arrays: dict, payload=None, side='MANO_RIGHT.pkl') -> Path:
    "Both MANO files in `folder`, with `payload` hidden under an extra key of `side`"
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in arrays.items():
        content = {**values, 'extra': payload} if payload is not None and name == side else values
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    return folder


def gesthand(*args, **env):
    return subprocess.run([GESTHAND, *map(str, args)], capture_output=True, text=True, env={**os.environ, **env})


def globals_of(path: Path) -> set[str]:
    "The `module name` of every global a pickle file names (GLOBAL opcodes; protocol 2 has no STACK_GLOBAL)"
    return {arg for op, arg, _ in pickletools.genops(path.read_bytes()) if op.name == 'GLOBAL'}


# --- 1. a MANO pickle runs no code -------------------------------------------------------------------------------------

# protocol 2 writes Python 3's `builtins` under its Python 2 name, which is the name the unpickler sees and refuses
@pytest.mark.parametrize('payload, refused', [(Touch, f'{os.system.__module__}.system'), (OpenFile, 'io.open'),
                                              (Eval, '__builtin__.eval')])
def test_malicious_mano_pickle_runs_nothing_on_load(tmp_path, arrays, monkeypatch, payload, refused):
    marker = tmp_path / 'code-ran'
    folder = write_mano_folder(tmp_path / 'mano', arrays, payload(marker))
    right = folder / 'MANO_RIGHT.pkl'
    expected = re.escape(f'{right}: refused to load global {refused}')
    with pytest.raises(UnsafePickleError, match=expected): read_mano_pickle(right)
    with pytest.raises(UnsafePickleError, match=expected): ManoHand('right', folder)
    with pytest.raises(UnsafePickleError, match=expected): ManoHand('left', folder)  # reads the right file too
    monkeypatch.setenv(MANO_ENV, str(folder))  # the path every loader takes by default
    with pytest.raises(UnsafePickleError, match=expected): ManoHand('right')
    assert not marker.exists()


def test_whole_file_payload_is_refused(tmp_path):
    marker = tmp_path / 'code-ran'
    (tmp_path / 'MANO_RIGHT.pkl').write_bytes(pickle.dumps(Touch(marker), protocol=4))  # STACK_GLOBAL, protocol 4
    with pytest.raises(UnsafePickleError, match='MANO_RIGHT.pkl: refused to load global'): read_mano_pickle(tmp_path / 'MANO_RIGHT.pkl')
    assert not marker.exists()


def test_convert_mano_refuses_a_malicious_pickle(tmp_path, arrays):
    marker = tmp_path / 'code-ran'
    folder = write_mano_folder(tmp_path / 'mano', arrays, Touch(marker))
    out = tmp_path / 'clean'
    result = gesthand('convert-mano', folder / 'MANO_RIGHT.pkl', folder / 'MANO_LEFT.pkl', out)
    assert result.returncode == 1, result
    assert f'{folder / "MANO_RIGHT.pkl"}: refused to load global {os.system.__module__}.system' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not marker.exists() and not out.exists()  # every input is read before anything is written


@pytest.mark.parametrize('content', [b'', 'truncated'])
def test_truncated_or_empty_pickle_names_the_path(tmp_path, arrays, content):
    folder = write_mano_folder(tmp_path / 'mano', arrays)
    right = folder / 'MANO_RIGHT.pkl'
    right.write_bytes(right.read_bytes()[:len(right.read_bytes()) // 2] if content == 'truncated' else content)
    with pytest.raises(pickle.UnpicklingError, match=re.escape(f'{right}: not a readable MANO pickle')): read_mano_pickle(right)
    result = gesthand('convert-mano', right, tmp_path / 'clean')
    assert result.returncode == 1 and f'{right}: not a readable MANO pickle' in result.stderr


def test_smplx_never_unpickles_the_file(arrays, tmp_path, monkeypatch):
    "smplx gets the checked arrays, so it has no reason to open the MANO file with its own `pickle.load`"
    def refuse(*args, **kwargs): raise AssertionError('an unrestricted pickle.load ran')
    monkeypatch.setattr(pickle, 'load', refuse)
    assert ManoHand('left', write_mano_folder(tmp_path / 'mano', arrays)).faces.shape == (1538, 3)


def test_checkpoints_load_with_weights_only(tmp_path):
    marker = tmp_path / 'code-ran'
    torch.save({'model': {'w': torch.ones(1)}, 'epoch': Touch(marker)}, tmp_path / 'last.pt')
    with pytest.raises(RuntimeError, match=re.escape(f'could not read checkpoint {tmp_path / "last.pt"}')): load_checkpoint(tmp_path / 'last.pt')
    trainer = Trainer(Linear(), l1_loss, Toy(), TrainConfig(out_dir=str(tmp_path), epochs=1, batch_size=8, workers=0))
    with pytest.raises(RuntimeError, match='could not read checkpoint'): trainer.fit()  # the resume path
    assert not marker.exists()


# --- 2. convert-mano writes a folder -----------------------------------------------------------------------------------

def fake_chumpy():
    "A `chumpy.ch` module whose `Ch` pickles like chumpy's leaf: the array in the state key `x`"
    module = types.ModuleType('chumpy.ch')
    class Ch:
        def __init__(self, x): self.x = x
        def __getstate__(self): return {'x': self.x}
    Ch.__module__, Ch.__qualname__ = 'chumpy.ch', 'Ch'
    module.Ch = Ch
    return module


@pytest.fixture
def chumpy_style(tmp_path, arrays, monkeypatch):
    "A MANO folder like the official one: `shapedirs` a chumpy object (written with a stand-in chumpy, then removed)"
    folder = tmp_path / 'models'
    folder.mkdir()
    with monkeypatch.context() as m:
        ch = fake_chumpy()
        m.setitem(sys.modules, 'chumpy', types.ModuleType('chumpy')); m.setitem(sys.modules, 'chumpy.ch', ch)
        for name, values in arrays.items():
            (folder / name).write_bytes(pickle.dumps({**values, 'shapedirs': ch.Ch(values['shapedirs'])}, protocol=2))
    assert 'chumpy.ch Ch' in globals_of(folder / 'MANO_RIGHT.pkl')
    return folder


def test_readme_convert_mano_command(tmp_path, chumpy_style, arrays):
    "The README's lines, read from the README and run by a shell: `~/mano-clean` is created, holds both copies and serves as the MANO folder"
    readme = (Path(__file__).parents[1] / 'README.md').read_text().splitlines()
    start = next(i for i, line in enumerate(readme) if line.startswith('gesthand convert-mano'))
    assert readme[start + 1].startswith('export GESTHAND_MANO_DIR=')
    home = tmp_path / 'home'
    home.mkdir()
    command = '\n'.join([readme[start].replace('gesthand', GESTHAND, 1), readme[start + 1], 'echo "MANO dir: $GESTHAND_MANO_DIR"'])
    result = subprocess.run(['bash', '-ec', command], capture_output=True, text=True,
                            env={**os.environ, MANO_ENV: str(chumpy_style), 'HOME': str(home)})
    assert result.returncode == 0, result.stderr
    clean = home / 'mano-clean'
    assert sorted(p.name for p in clean.iterdir()) == sorted(SIDES)
    assert result.stdout.split()[:2] == [str(clean / 'MANO_RIGHT.pkl'), str(clean / 'MANO_LEFT.pkl')]
    assert result.stdout.splitlines()[-1] == f'MANO dir: {clean}'
    assert all(g.startswith('numpy') or g == '_codecs encode' for g in globals_of(clean / 'MANO_LEFT.pkl'))


def test_convert_mano_both_files_into_a_new_folder(tmp_path, chumpy_style, arrays):
    out = tmp_path / 'new' / 'mano-clean'
    result = gesthand('convert-mano', chumpy_style / 'MANO_RIGHT.pkl', chumpy_style / 'MANO_LEFT.pkl', out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(SIDES)  # no temporary files left
    for name in SIDES:
        # plain arrays: numpy's names and the bytes codec of protocol 2, no chumpy
        assert all(g.startswith('numpy') or g == '_codecs encode' for g in globals_of(out / name)), globals_of(out / name)
        assert (read_mano_pickle(out / name)['shapedirs'] == arrays[name]['shapedirs']).all()
    assert mano_dir(out) == out
    assert ManoHand('left', out)(torch.zeros(1, 48), torch.zeros(1, 10))['joints'].shape == (1, 21, 3)


def test_convert_mano_never_overwrites_an_input(tmp_path, chumpy_style):
    before = {name: (chumpy_style / name).read_bytes() for name in SIDES}
    result = gesthand('convert-mano', chumpy_style / 'MANO_RIGHT.pkl', chumpy_style / 'MANO_LEFT.pkl', chumpy_style)
    assert result.returncode == 1 and 'refusing to overwrite the input' in result.stderr
    other = tmp_path / 'other' / 'MANO_RIGHT.pkl'
    other.parent.mkdir()
    other.write_bytes(before['MANO_RIGHT.pkl'])
    with pytest.raises(SystemExit, match='share a file name'): main(['convert-mano', str(chumpy_style / 'MANO_RIGHT.pkl'), str(other), str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()
    with pytest.raises(SystemExit, match='is not a folder'): main(['convert-mano', str(chumpy_style / 'MANO_RIGHT.pkl'), str(other)])
    assert {name: (chumpy_style / name).read_bytes() for name in SIDES} == before


# --- 3. a run never resumes a checkpoint of other settings -------------------------------------------------------------

class Toy(Dataset):
    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g); self.y = self.x @ torch.tensor([1., -2., .5, 3.])
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return {'image': self.x[i], 'target': self.y[i]}


class Linear(nn.Module):
    def __init__(self): super().__init__(); self.fc = nn.Linear(4, 1)
    def forward(self, x): return {'y': self.fc(x)[:, 0]}


def l1_loss(pred, batch, epoch):
    err = (pred['y'] - batch['target']).abs().mean()
    return {'total': err, 'l1': err}


def stage2_trainer(config):
    "A trainer with the stage-2 schedule, out_dir and settings of `config`, on a toy model (seconds, not minutes)"
    torch.manual_seed(0)
    return Trainer(Linear(), l1_loss, Toy(), config.stage2, settings=config.settings(2))


def test_one_step_then_full_run_never_mix(tmp_path, capsys):
    base = dict(runs_dir=str(tmp_path / 'runs'), synthetic_preset='tiny', **{'stage2.workers': 0, 'stage2.epochs': 2})
    quick = experiment_config('smoke', **base, **{'stage2.max_steps_per_epoch': 1})
    full = experiment_config('smoke', **base)
    assert quick.run_dir != full.run_dir and quick.run_dir.parent == full.run_dir.parent  # same runs_dir, own folders
    stage2_trainer(quick).fit()
    # the same folder with the full schedule: refused, the field named, and how to start fresh said
    full.stage2.out_dir = quick.stage2.out_dir
    with pytest.raises(ValueError) as error: stage2_trainer(full).fit()
    message = str(error.value)
    assert 'train.max_steps_per_epoch: 1 -> None' in message and 'To start fresh, delete' in message and 'resume=False' in message
    # a setting outside the schedule (the model's injection) is named too
    other = experiment_config('smoke', **base, **{'stage2.max_steps_per_epoch': 1, 'tokens.injection': 'none'})
    other.stage2.out_dir = quick.stage2.out_dir
    with pytest.raises(ValueError, match="settings.tokens.injection: 'tokens' -> 'none'"): stage2_trainer(other).fit()


def test_real_stage2_refuses_a_checkpoint_of_another_schedule(tmp_path, capsys):
    "The real stage 2 on the tiny synthetic set, one step: the same command resumes it, another step count is refused"
    settings = dict(name='ours_no_pretrain', synthetic_preset='tiny', runs_dir=str(tmp_path / 'runs'),
                    **{'stage2.epochs': 1, 'stage2.workers': 0, 'stage2.max_steps_per_epoch': 1})
    checkpoint = train_stage2(experiment_config('smoke', **settings))
    assert train_stage2(experiment_config('smoke', **settings)) == checkpoint
    assert f'resumed from {checkpoint} after epoch 1' in capsys.readouterr().out
    longer = experiment_config('smoke', **{**settings, 'stage2.max_steps_per_epoch': 2})
    assert longer.run_dir != checkpoint.parents[1]
    longer.stage2.out_dir = str(checkpoint.parent)  # forced into the same folder
    with pytest.raises(ValueError, match='train.max_steps_per_epoch: 1 -> 2'): train_stage2(longer)
    assert load_checkpoint(checkpoint)['settings']['tokens']['injection'] == 'tokens'


def test_unchanged_run_resumes_bit_identically(tmp_path, capsys):
    config = experiment_config('smoke', runs_dir=str(tmp_path / 'runs'), synthetic_preset='tiny',
                               **{'stage2.workers': 0, 'stage2.epochs': 2, 'stage2.batch_size': 8})
    straight = stage2_trainer(config); straight.fit()
    resumed_dir = tmp_path / 'resumed'
    config.stage2.out_dir, config.stage2.epochs = str(resumed_dir), 1
    stage2_trainer(config).fit()  # the run "dies" after epoch 1
    config.stage2.epochs = 2
    resumed = stage2_trainer(config); resumed.fit()
    assert f'resumed from {resumed_dir / "last.pt"} after epoch 1' in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()))
    assert [r['train/l1'] for r in straight.history] == [r['train/l1'] for r in resumed.history]


# --- 4. experiment names and overrides are checked ---------------------------------------------------------------------

def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown experiment 'ours_no_pretain'") as error: experiment_config('smoke', name='ours_no_pretain')
    assert all(name in str(error.value) for name in EXPERIMENTS)


@pytest.mark.parametrize('override, message', [
    ({'stage2.epochs': 'two'}, "stage2.epochs must be int, got 'two'"),
    ({'stage2.epochs': -1}, 'stage2: epochs must be at least 0'),
    ({'tokens.injection': 'tokenz'}, "tokens: injection must be one of ('tokens', 'cross_attention', 'none'), got 'tokenz'"),
    ({'tokens.gesture_source': 'oracle'}, "tokens: gesture_source must be one of"),
    ({'encoder.fine_schedule': 'linaer'}, "encoder.fine_schedule must be one of ('linear', 'cosine', 'none', 'off'), got 'linaer'"),
    ({'data.gesture_scheme': 'both'}, "data: "),
    ({'tokens.injektion': 'none'}, "TokenConfig has no field 'injektion' (from override 'tokens.injektion')"),
    ({'pretrain_gestures': 'maybe'}, "pretrain_gestures must be bool, got 'maybe'"),
    ({'synthetic_preset': 'huge'}, "synthetic_preset must be one of"),
])
def test_bad_override_is_refused_with_the_field_named(override, message):
    with pytest.raises(ValueError) as error: experiment_config('smoke', **override)
    assert message in str(error.value)
    if 'gesture_scheme' in override: assert 'both' in str(error.value)


def test_overrides_are_coerced_to_the_field_type():
    config = experiment_config('smoke', seed='2', pretrain_gestures='false', **{'stage2.epochs': '3', 'stage2.lr': '1e-3'})
    assert (config.seed, config.pretrain_gestures, config.stage2.epochs, config.stage2.lr) == (2, False, 3, 1e-3)
    assert config.stage2.seed == 2 and config.run_dir.name.startswith('smoke-ours-seed2-')
    # an int given for a float field keys the same folder as the float itself
    assert experiment_config('smoke', **{'encoder.fine_end': 1}).stage1_dir == experiment_config('smoke', **{'encoder.fine_end': 1.0}).stage1_dir


def test_train_stage2_notebook_refuses_a_typo_before_training(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="unknown experiment 'ours_no_pretain'"):
        pm.execute_notebook(str(NBS / 'train_stage2.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(NBS), progress_bar=False,
                            parameters=dict(name='ours_no_pretain', runs_dir=str(tmp_path / 'runs'), results_dir=str(tmp_path / 'results')))
    assert not (tmp_path / 'runs').exists() and not (tmp_path / 'results').exists()


# --- 6. a NaN batch names its samples ----------------------------------------------------------------------------------

class ToyWithIds(Toy):
    "Toy samples with InterHand2.6M ids; sample 13 carries a NaN input, as a bad annotation would"
    def __getitem__(self, i):
        x = torch.full_like(self.x[i], float('nan')) if i == 13 else self.x[i]
        return {'image': x, 'target': self.y[i], 'image_id': torch.tensor(100 + i), 'annot_id': torch.tensor(500 + i)}


def test_a_nan_batch_stops_training_naming_the_sample(tmp_path):
    torch.manual_seed(0)
    trainer = Trainer(Linear(), l1_loss, ToyWithIds(), TrainConfig(out_dir=str(tmp_path), epochs=1, batch_size=8, workers=0))
    with pytest.raises(FloatingPointError, match=r'non-finite loss .*image_id=113 annot_id=513 \(image\)'): trainer.fit()
    assert not (tmp_path / 'last.pt').exists()  # nothing half-trained is saved as if it were a finished epoch
