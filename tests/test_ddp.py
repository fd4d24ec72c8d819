"""torchrun DDP on CPU: two gloo ranks train stage 1 and stage 2 of the smoke experiment for a few steps through
`gesthand train`, the command the Training chapter gives for one machine and for several. The run is stopped with
SIGTERM after the first stage-2 epoch (what a scheduler's preemption or Ctrl-C sends), started again, and must resume."""
import json, math, os, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest

from gesthand.experiment import experiment_config, evaluate_checkpoint, evaluate_encoder

GESTHAND = Path(sys.executable).parent / 'gesthand'  # the console script of the environment running the tests
FEW_STEPS = {'stage1.epochs': 1, 'stage1.max_steps_per_epoch': 2, 'stage2.epochs': 2, 'stage2.max_steps_per_epoch': 2,
             'stage1.batch_size': 8, 'stage2.batch_size': 8, 'stage1.workers': 0, 'stage2.workers': 0}
TIMEOUT_S = 600  # generous: the two ranks share CI's two cores with nothing else


def overrides(tmp_path: Path) -> dict:
    return {**FEW_STEPS, 'runs_dir': str(tmp_path / 'runs'), 'results_dir': str(tmp_path / 'results')}


def torchrun(tmp_path: Path) -> list[str]:
    sets = [arg for key, value in overrides(tmp_path).items() for arg in ('--set', f'{key}={value}')]
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--no-python',
            str(GESTHAND), 'train', '2', '--preset', 'smoke', *sets]


def epochs_done(metrics_csv: Path) -> int:
    try: return len(pd.read_csv(metrics_csv))
    except (FileNotFoundError, pd.errors.EmptyDataError): return 0


@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    "Two ranks stopped after stage 2's first epoch, then run to the end; (config, output of the second launch)"
    tmp_path = tmp_path_factory.mktemp('ddp')
    config = experiment_config('smoke', **overrides(tmp_path))
    stage2_csv, stage2_checkpoint = Path(config.stage2.out_dir) / 'metrics.csv', Path(config.stage2.out_dir) / 'last.pt'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    first = subprocess.Popen(torchrun(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + TIMEOUT_S
    while not stage2_checkpoint.exists() and first.poll() is None and time.monotonic() < deadline: time.sleep(0.1)
    finished_early = first.poll() is not None
    first.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks and waits for them
    output = first.communicate(timeout=120)[0]
    assert not finished_early, f'the first launch ended before it could be stopped:\n{output[-3000:]}'
    assert epochs_done(stage2_csv) == 1, output[-3000:]
    assert not list((tmp_path / 'results').glob('*.json')), 'a stopped run wrote results'
    second = subprocess.run(torchrun(tmp_path), env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    return config, second.stdout + second.stderr


def test_ddp_resumes_and_only_rank_0_writes(ddp_run):
    config, output = ddp_run
    assert f'resumed from {config.stage2.out_dir}/last.pt after epoch 1' in output
    assert output.count('results written to') == 1 and '2 process(es)' in output
    results = list(Path(config.results_dir).iterdir())
    assert [p.name for p in results] == ['smoke-ours-stage2-seed0.json']
    record = json.loads(results[0].read_text())
    assert record['processes'] == 2 and record['metrics']['num_samples'] > 0 and 'untrained_metrics' in record
    assert record['speed']['flops_per_image'] > 0 and record['speed']['mfu'] is None  # no bf16 peak for a CPU
    for out_dir in (config.stage1.out_dir, config.stage2.out_dir):
        assert sorted(p.name for p in Path(out_dir).iterdir()) == ['last.pt', 'metrics.csv']  # no file of rank 1, no temporary


def test_ddp_losses_finite_and_replicas_identical(ddp_run):
    config, _ = ddp_run
    for out_dir, epochs in ((config.stage1.out_dir, 1), (config.stage2.out_dir, 2)):
        history = pd.read_csv(Path(out_dir) / 'metrics.csv')
        assert list(history['epoch']) == list(range(1, epochs + 1))
        assert history['train/total'].map(math.isfinite).all()
        assert (history['ranks/weight_spread'] == 0).all(), history['ranks/weight_spread']


def test_ddp_validation_equals_one_process(ddp_run):
    "The validation metrics two ranks gathered equal one process's evaluation of the saved model on the whole split"
    config, _ = ddp_run
    stage1 = pd.read_csv(Path(config.stage1.out_dir) / 'metrics.csv').iloc[-1]
    alone = evaluate_encoder(config, Path(config.stage1.out_dir) / 'last.pt', 'val')
    for key, value in alone.items(): assert stage1[f'val/{key}'] == pytest.approx(value, abs=1e-9), key
    stage2 = pd.read_csv(Path(config.stage2.out_dir) / 'metrics.csv').iloc[-1]
    alone = evaluate_checkpoint(config, Path(config.stage2.out_dir) / 'last.pt', 'val')
    assert stage2['val/num_samples'] == alone['num_samples']
    for key in ('mpjpe', 'pa_mpjpe', 'mpjpe_intaghand', 'mpvpe_intaghand', 'joints_2d_median', 'coarse_top1', 'fine_top1'):
        assert stage2[f'val/{key}'] == pytest.approx(alone[key], rel=1e-5), key
