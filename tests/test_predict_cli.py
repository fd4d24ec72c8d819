"""`gesthand predict` and `gesthand export` end to end: an untrained 64² checkpoint on an image of the tiny synthetic set."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gesthand.data import InterHandDataset
from gesthand.experiment import experiment_config, stage2_model
from gesthand.predict import ONNX_OUTPUTS, Predictor, cut_crop, load_image, onnx_session, save_stage2
from gesthand.training import seed_everything

GESTHAND = str(Path(sys.executable).parent / 'gesthand')  # the console script installed with the package
ROOT = Path(__file__).resolve().parents[1]
SMALL = {'data.input_size': 64, 'tokens.input_size': 64, 'baseline.input_size': 64}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    "An untrained 64² smoke model saved as the trainer saves its stage-2 `last.pt`"
    config = experiment_config('smoke', **SMALL)
    seed_everything(0)
    return save_stage2(stage2_model(config), config, tmp_path_factory.mktemp('run') / 'last.pt')


@pytest.fixture(scope='module')
def left_hand(tiny_root, tmp_path_factory):
    "A PNG written from the first left-hand record of the tiny test split, and that record's box"
    test_set = InterHandDataset(tiny_root, 'test', experiment_config('smoke', **SMALL).data)
    i = int(np.flatnonzero(test_set.records['is_left'])[0])
    path = tmp_path_factory.mktemp('images') / 'hand.png'
    assert cv2.imwrite(str(path), cv2.imread(test_set.records['path'][i]))
    return path, test_set.records['bbox'][i]


def test_predict_cli_writes_json_overlay_and_mesh(checkpoint, left_hand, tmp_path):
    image, bbox = left_hand
    result = subprocess.run([GESTHAND, 'predict', str(image), '--checkpoint', str(checkpoint), '--hand', 'left',
                             '--bbox', ','.join(map(str, bbox)), '--out', str(tmp_path), '--device', 'cpu'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ('hand.json', 'hand_overlay.png', 'hand.ply'): assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((tmp_path / 'hand.json').read_text())
    expected = Predictor.from_checkpoint(checkpoint, device='cpu').predict(image, bbox, 'left')
    np.testing.assert_allclose(record['joints_2d'], expected['joints_2d'], atol=1e-3)
    assert record['hand'] == 'left' and record['crop']['mirrored'] and len(record['coarse']) == 5
    assert cv2.imread(str(tmp_path / 'hand_overlay.png')).shape == load_image(image).shape


def test_predict_cli_names_a_box_outside_the_image(checkpoint, left_hand, tmp_path):
    image, _ = left_hand
    result = subprocess.run([GESTHAND, 'predict', str(image), '--checkpoint', str(checkpoint), '--bbox', '900,10,50,50',
                             '--out', str(tmp_path), '--device', 'cpu'], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f'gesthand predict: error: {image}: bbox 900,10,50,50 lies outside the 334x512 image'


def test_export_cli_writes_an_onnx_model_that_matches_torch(checkpoint, left_hand, tmp_path):
    out = tmp_path / 'hand.onnx'
    result = subprocess.run([GESTHAND, 'export', str(checkpoint), '--onnx', str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    predictor = Predictor.from_checkpoint(checkpoint, device='cpu')
    image, bbox = left_hand
    pixels = cut_crop(load_image(image), bbox, predictor.config.data, left=True)['pixels'][None]
    outputs = dict(zip(ONNX_OUTPUTS, onnx_session(out, threads=1).run(None, {'image': pixels.numpy()})))
    np.testing.assert_allclose(outputs['joints'], predictor.forward(pixels)['joints_cam'], atol=1e-3)


def test_readme_commands_run_verbatim_after_the_main_job(checkpoint, tmp_path):
    "The README's predict and export commands, run as written in a checkout where the main job wrote its results JSON and run"
    readme = (ROOT / 'README.md').read_text()
    predict = re.search(r'^gesthand predict examples/.+$', readme, re.M).group(0)
    export = re.search(r'`(gesthand export [^`]+)`', readme).group(1)
    example = json.loads((ROOT / 'examples' / 'hand.json').read_text())
    assert f"--bbox {','.join(map(str, example['bbox']))} " in predict and example['hand'] == 'right'
    assert (ROOT / 'examples' / example['image']).stat().st_size <= 60_000
    run = tmp_path / 'runs' / 'smoke-ours-seed0-0123456789'  # as the main job leaves it, the checkpoint untrained
    (run / 'stage2').mkdir(parents=True)
    (run / 'stage2' / 'last.pt').symlink_to(checkpoint)
    (tmp_path / 'results').mkdir()
    (tmp_path / 'results' / 'smoke-ours-stage2-seed0.json').write_text(json.dumps({'run_dir': str(run)}))
    (tmp_path / 'examples').symlink_to(ROOT / 'examples')
    for command in (predict, export):
        result = subprocess.run([GESTHAND, *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)
    for name in ('hand.json', 'hand_overlay.png', 'hand.ply'): assert (tmp_path / 'runs' / 'predict' / name).stat().st_size > 0, name
    assert json.loads((tmp_path / 'runs' / 'predict' / 'hand.json').read_text())['bbox'] == example['bbox']
    assert (tmp_path / 'runs' / 'hand.onnx').stat().st_size > 0


def test_predict_cli_names_the_checkpoint_a_results_json_lacks(left_hand, tmp_path):
    image, _ = left_hand
    (tmp_path / 'results.json').write_text(json.dumps({'run_dir': str(tmp_path / 'runs' / 'gone')}))
    result = subprocess.run([GESTHAND, 'predict', str(image), '--checkpoint', str(tmp_path / 'results.json')], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"has no stage-2 checkpoint {tmp_path / 'runs' / 'gone' / 'stage2' / 'last.pt'}: train it first" in result.stderr
