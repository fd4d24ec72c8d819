"""The prepared GPU run (`tools/gpu_run.sh`) at a tiny size on the CPU: the `gpu` preset on the tiny world's packed 64²
crops, one step per epoch, for two experiments that each train their own stage 1 (HRNet and ResNet-50)."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
TINY = {'synthetic_preset': 'tiny', 'data.input_size': 64, 'tokens.input_size': 64, 'baseline.input_size': 64,
        'stage1.epochs': 1, 'stage1.max_steps_per_epoch': 1, 'stage2.epochs': 1, 'stage2.max_steps_per_epoch': 1,
        'stage1.batch_size': 8, 'stage2.batch_size': 8, 'stage1.workers': 0, 'stage2.workers': 0}


def gpu_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    sets = {**TINY, 'runs_dir': tmp_path / 'runs', 'results_dir': tmp_path / 'results'}
    command = ['bash', str(ROOT / 'tools' / 'gpu_run.sh'), *[a for k, v in sets.items() for a in ('--set', f'{k}={v}')], *args]
    env = {**os.environ, 'PATH': f'{Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}'}  # its python3 is this one
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


def test_gpu_run_writes_tagged_results(tmp_path):
    run = gpu_run(tmp_path, '--experiments', 'ours', 'baseline_gesture')
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert 'ours: done' in run.stdout and 'baseline_gesture: done' in run.stdout and 'failed: none' in run.stdout
    names = sorted(p.name for p in (tmp_path / 'results').iterdir())
    assert names == ['gpu-baseline_gesture-stage2-seed0.json', 'gpu-ours-stage2-seed0.json']
    stage1_runs = sorted(p.name.split('-')[1] for p in (tmp_path / 'runs').glob('stage1-*'))
    assert stage1_runs == ['hrnet_w18_small', 'resnet50']  # each experiment trained the stage 1 it needs
    for name in names:
        record = json.loads((tmp_path / 'results' / name).read_text())
        assert record['preset'] == 'gpu' and record['processes'] == 1 and record['hardware'] == 'cpu'
        assert record['device'].startswith('cpu (') and record['metrics']['num_samples'] > 0
        speed = record['speed']
        assert speed['images_per_s'] > 0 and speed['flops_per_image'] > 1e8 and speed['mfu'] is None  # no peak for a CPU


def test_gpu_run_starts_nothing_past_its_budget(tmp_path):
    run = gpu_run(tmp_path, '--experiments', 'ours', '--budget-s', '0')
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert 'ours: not started' in run.stdout and not (tmp_path / 'results').exists()
