"""The papermill entry points run with injected parameters (a missing `parameters` tag would silently ignore them)."""
import json
from pathlib import Path

import papermill as pm

NBS = Path(__file__).parents[1] / 'nbs'


def test_make_dataset_uses_injected_parameters(tmp_path):
    out_dir = tmp_path / 'dataset'
    pm.execute_notebook(str(NBS / 'make_dataset.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(NBS),
                        parameters=dict(out_dir=str(out_dir), seed=3, workers=1), progress_bar=False)
    meta = json.loads((out_dir / 'synthetic.json').read_text())
    assert meta['config']['seed'] == 3
    executed = json.loads((tmp_path / 'out.ipynb').read_text())
    tags = [c['metadata'].get('tags', []) for c in executed['cells']]
    assert ['parameters'] in tags and ['injected-parameters'] in tags
    assert tags.index(['injected-parameters']) == tags.index(['parameters']) + 1


def test_train_stage2_runs_with_injected_parameters(tmp_path):
    "Injected parameters reach the config, and a named experiment keeps its own settings (no stage 1 without pretraining)"
    out = tmp_path / 'out.ipynb'
    pm.execute_notebook(str(NBS / 'train_stage2.ipynb'), str(out), cwd=str(NBS), progress_bar=False,
                        parameters=dict(epochs=1, max_steps=2, runs_dir=str(tmp_path / 'runs'), results_dir=str(tmp_path / 'results'),
                                        injection='cross_attention', name='ours_no_pretrain'))
    results = json.loads((tmp_path / 'results' / 'smoke-ours_no_pretrain-stage2-seed0.json').read_text())
    assert results['config']['tokens']['injection'] == 'cross_attention' and results['config']['stage2']['epochs'] == 1
    assert results['config']['pretrain_gestures'] is False
    assert not list((tmp_path / 'runs').glob('stage1-*')), 'a run without gesture pretraining trained stage 1'
    assert results['hardware'] == 'cpu' and results['metrics']['num_samples'] > 0
    run_dir = Path(results['run_dir'])  # named by the experiment, the seed and the fingerprint of its settings
    assert run_dir.parent == tmp_path / 'runs' and run_dir.name.startswith('smoke-ours_no_pretrain-seed0-')
    assert (run_dir / 'stage2' / 'last.pt').exists()
