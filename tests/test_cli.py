import json
import subprocess
import sys
from pathlib import Path

GESTHAND = str(Path(sys.executable).parent / 'gesthand')  # the console script installed with the package


def test_synth_cli_writes_a_dataset(tmp_path):
    out = tmp_path / 'ih'
    result = subprocess.run([GESTHAND, 'synth', '--out', str(out), '--captures', '1', '1', '1',
                             '--cameras_per_frame', '1', '--workers', '1'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for split in ('train', 'val', 'test'):
        data = json.loads((out / 'annotations' / split / f'InterHand2.6M_{split}_data.json').read_text())
        assert 80 <= len(data['images']) <= 93
    assert json.loads((out / 'synthetic.json').read_text())['config']['cameras_per_frame'] == 1


def test_synth_cli_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / 'keep.txt').write_text('finished work')
    result = subprocess.run([GESTHAND, 'synth', '--out', str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0 and 'exists and is not empty' in result.stderr
    assert (tmp_path / 'keep.txt').read_text() == 'finished work'
