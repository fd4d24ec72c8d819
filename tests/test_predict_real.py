"""The predictor on the four real InterHand2.6M test records of `../shared/data` (CC-BY-NC: read in place, never copied into the project)."""
from pathlib import Path

import numpy as np
import pytest

from gesthand.data import HAND_TYPES, DataConfig, InterHandDataset
from gesthand.geometry import project_points
from gesthand.experiment import experiment_config, stage2_model
from gesthand.skeleton import IH_ROOT
from gesthand.predict import Predictor, load_image, write_prediction
from gesthand.training import seed_everything

REAL = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'interhand26m_real_sample'
SMALL = {'data.input_size': 64, 'tokens.input_size': 64, 'baseline.input_size': 64}
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f'no real InterHand2.6M sample at {REAL}')


@pytest.fixture(scope='module')
def records():
    "The sample's records with their annotated boxes and cameras: it has interacting hands and no MANO_NeuralAnnot file"
    records = InterHandDataset(REAL, 'test', DataConfig(input_size=64, hand_types=HAND_TYPES, require_mano=False)).records
    assert len(records['path']) == 4
    return records


@pytest.fixture(scope='module')
def predictor():
    "An untrained 64² smoke model: the geometry does not depend on the weights"
    config = experiment_config('smoke', **SMALL)
    seed_everything(0)
    return Predictor(stage2_model(config), config, device='cpu')


def test_predictor_on_real_records(records, predictor):
    hands = ['left' if left else 'right' for left in records['is_left']]
    for intrinsics in (records['K'], None):  # the records' cameras, and the default camera of an unknown image
        results = predictor.predict_batch(records['path'], records['bbox'], hands, intrinsics)
        for path, bbox, hand, result in zip(records['path'], records['bbox'], hands, results):
            height, width = load_image(path).shape[:2]
            assert result['image_size'] == (width, height) and result['hand'] == hand, path
            assert result['crop']['mirrored'] == (hand == 'left'), path
            shapes = {key: np.shape(result[key]) for key in ('mano_pose', 'mano_shape', 'cam', 'joints_cam', 'vertices', 'joints_2d', 'vertices_2d')}
            assert shapes == {'mano_pose': (48,), 'mano_shape': (10,), 'cam': (3,), 'joints_cam': (21, 3), 'vertices': (778, 3),
                              'joints_2d': (21, 2), 'vertices_2d': (778, 2)}, path
            assert result['crop']['image'].shape == (64, 64, 3), path
            assert np.isfinite(result['joints_2d']).all() and np.isfinite(result['joints_cam']).all(), path
            np.testing.assert_array_equal(result['bbox'], bbox)
            x, y, side, _ = result['crop']['box']
            assert 0 <= x and 0 <= y and x + side <= width and y + side <= height, (path, result['crop']['box'])
            assert len(result['coarse']) == len(result['fine']) == 5, path
        for K, result in zip(records['K'] if intrinsics is not None else [r['intrinsics'] for r in results], results):
            np.testing.assert_allclose(project_points(K, result['joints_cam'][IH_ROOT]), result['joints_2d'][IH_ROOT], atol=1e-3)


def test_write_prediction_of_a_real_record(records, predictor, tmp_path):
    result = predictor.predict(records['path'][0], records['bbox'][0], 'left' if records['is_left'][0] else 'right', records['K'][0])
    paths = write_prediction(result, load_image(records['path'][0]), tmp_path, 'real')
    assert all(path.parent == tmp_path and path.stat().st_size > 0 for path in paths.values())
