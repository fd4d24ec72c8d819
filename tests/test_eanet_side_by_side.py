"""The parts of `tools/eanet_side_by_side.py` that do not need an EANet checkout: the joint regressor it writes for
EANet, the rotation-to-axis-angle function it puts in place of torchgeometry's, and the working copy it prepares."""
import importlib.util, json, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def harness():
    spec = importlib.util.spec_from_file_location('eanet_side_by_side', ROOT / 'tools' / 'eanet_side_by_side.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rotation_matrix_to_angle_axis_inverts_rodrigues(harness):
    rotvecs = Rotation.random(64, random_state=0).as_rotvec()
    rotvecs = rotvecs[np.linalg.norm(rotvecs, axis=1) > 0.05]  # away from 0 and from π, where the axis is ill-posed
    rotvecs = rotvecs[np.linalg.norm(rotvecs, axis=1) < np.pi - 0.05]
    matrices = torch.from_numpy(Rotation.from_rotvec(rotvecs).as_matrix())
    three_by_four = torch.cat([matrices, torch.zeros(len(matrices), 3, 1, dtype=matrices.dtype)], 2)  # torchgeometry's input
    np.testing.assert_allclose(harness.rotation_matrix_to_angle_axis(three_by_four).numpy(), rotvecs, atol=1e-6)


def test_ih26m_regressor_is_mano_joints_and_tips_in_interhand_order(harness):
    from gesthand.mano import load_mano_arrays, mano_dir
    from gesthand.skeleton import IH_FROM_MANO, IH_ROOT, TIP_VERTEX_IDS
    regressor = harness.ih26m_regressor(mano_dir())
    assert regressor.shape == (21, 778)
    np.testing.assert_allclose(regressor.sum(1), 1, atol=1e-5)  # each joint is an affine mix of vertices
    np.testing.assert_allclose(regressor[IH_ROOT], load_mano_arrays('right', mano_dir())['J_regressor'][0], atol=1e-7)
    tips = [i for i, m in enumerate(IH_FROM_MANO) if m >= 16]
    assert [int(np.argmax(regressor[i])) for i in tips] == [TIP_VERTEX_IDS[IH_FROM_MANO[i] - 16] for i in tips]


def test_eanet_workdir_points_a_copy_at_our_world(harness, tiny_root, tmp_path):
    from gesthand.mano import mano_dir
    checkout = tmp_path / 'EANet'
    with pytest.raises(FileNotFoundError, match='lacks main/config.py'):
        harness.eanet_workdir(checkout, tiny_root, mano_dir(), tmp_path / 'work0')
    (checkout / 'main').mkdir(parents=True)
    (checkout / 'main' / 'config.py').write_text('cfg = None\n')
    (checkout / 'data' / 'InterHand26M').mkdir(parents=True)
    (checkout / 'common' / 'utils' / 'human_model_files').mkdir(parents=True)  # EANet's MANO folder: never copied
    main = harness.eanet_workdir(checkout, tiny_root, mano_dir(), tmp_path / 'work')
    assert main == tmp_path / 'work' / 'EANet' / 'main' and (main / 'config.py').exists()
    assert not (tmp_path / 'work' / 'EANet' / 'common' / 'utils' / 'human_model_files').exists()
    data = main.parent / 'data' / 'InterHand26M'
    hm = json.loads((data / 'annotations' / 'train' / 'InterHand2.6M_train_data_hm.json').read_text())
    assert hm == json.loads((tiny_root / 'annotations' / 'train' / 'InterHand2.6M_train_data.json').read_text())
    assert (data / 'images').resolve() == (tiny_root / 'images').resolve()
    assert np.load(data / 'J_regressor_ih26m_mano.npy').shape == (21, 778)
    assert (tmp_path / 'work' / 'human_model_files' / 'mano').resolve() == mano_dir().resolve()
    assert list(checkout.rglob('*_data_hm.json')) == []  # the checkout itself is untouched


def test_readme_with_table_replaces_only_the_marked_block(harness):
    from gesthand.training import side_by_side_table
    record = {'size': 256, 'machine': '2 cores', 'torch_threads': 2, 'world': 'smoke', 'eanet_commit': 'a' * 40, 'git_commit': 'b' * 40,
              'settings': {'loader_batch': '32', 'step_batch': '16'},
              'loaders': [{'loader': 'EANet InterHand26M', 'workers': 0, 'samples_per_s': 100.0}],
              'steps': [{'model': 'EANet', 'precision': 'fp32', 'images_per_s': 2.0, 'parameters_m': 40.0}]}
    start, end = harness.README_MARKERS
    once = harness.readme_with_table(f'before\n{start}\nold table\n{end}\nafter\n', record)
    assert once == f'before\n{start}\n{side_by_side_table(record)}\n{end}\nafter\n'
    assert harness.readme_with_table(once, record) == once
    with pytest.raises(ValueError, match='needs one'):
        harness.readme_with_table('no markers', record)


def test_committed_readme_table_is_the_committed_record(harness):
    "The README's table is regenerated from the committed results JSON, never typed in"
    recorded = ROOT / 'results' / 'benchmark-eanet-side-by-side.json'
    if not recorded.exists(): pytest.skip('no side-by-side run committed')
    readme = (ROOT / 'README.md').read_text()
    assert harness.readme_with_table(readme, json.loads(recorded.read_text())) == readme
