"""The synthetic world read the way a user of the real files would read it: plain json, plain smplx, plain pinhole."""
import json
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

TIPS = [745, 317, 444, 556, 673]  # thumb, index, middle, ring, pinky (EANet / IntagHand)
IH_FROM_MANO = [16, 15, 14, 13, 17, 3, 2, 1, 18, 6, 5, 4, 19, 12, 11, 10, 20, 9, 8, 7, 0]


def load(root, split, kind):
    return json.loads((Path(root) / 'annotations' / split / f'InterHand2.6M_{split}_{kind}.json').read_text())


@pytest.fixture(scope='module')
def mano_layers():
    from gesthand.mano import mano_dir
    folder = str(mano_dir())
    return {side: smplx.MANO(folder, is_rhand=side == 'right', use_pca=False, flat_hand_mean=False) for side in ('right', 'left')}


def test_smplx_loads_our_files_unchanged(mano_layers):
    for layer in mano_layers.values():
        out = layer(betas=torch.zeros(1, 10), global_orient=torch.zeros(1, 3), hand_pose=torch.zeros(1, 45))
        assert out.vertices.shape == (1, 778, 3) and out.joints.shape == (1, 16, 3)
        assert layer.faces.shape == (1538, 3)


def test_neuralannot_params_reproduce_world_joints(tiny_root, mano_layers):
    joints3d, mano = load(tiny_root, 'test', 'joint_3d'), load(tiny_root, 'test', 'MANO_NeuralAnnot')
    checked = 0
    for capture, frames in mano.items():
        for frame, hands in frames.items():
            for side, params in hands.items():
                if params is None: continue
                t = lambda k: torch.tensor(params[k], dtype=torch.float32)[None]
                out = mano_layers[side](betas=t('shape'), global_orient=t('pose')[:, :3], hand_pose=t('pose')[:, 3:], transl=t('trans'))
                joints = torch.cat([out.joints, out.vertices[:, TIPS]], 1)[0, IH_FROM_MANO].numpy() * 1000
                block = slice(0, 21) if side == 'right' else slice(21, 42)
                world = np.array(joints3d[capture][frame]['world_coord'])[block]
                assert np.abs(joints - world).max() < 0.5, (capture, frame, side)  # float32 MANO vs JSON: sub-millimetre
                checked += 1
    assert checked > 90


def test_annotations_follow_interhand_definitions(tiny_root):
    data, cameras, joints3d = (load(tiny_root, 'test', k) for k in ('data', 'camera', 'joint_3d'))
    assert len(data['images']) == len(data['annotations']) > 0
    for image, annot in zip(data['images'], data['annotations']):
        cam = {k: np.array(v[image['camera']]) for k, v in cameras[str(image['capture'])].items()}
        frame = joints3d[str(image['capture'])][str(image['frame_idx'])]
        xyz = (np.array(frame['world_coord']) - cam['campos']) @ cam['camrot'].T
        uv = xyz[:, :2] / xyz[:, 2:] * cam['focal'] + cam['princpt']
        inside = (uv >= 0).all(1) & (uv[:, 0] <= image['width'] - 1) & (uv[:, 1] <= image['height'] - 1)
        valid = np.array([v[0] for v in annot['joint_valid']], bool)
        np.testing.assert_array_equal(valid, inside & np.array(frame['joint_valid']))
        lo, hi = uv[valid].min(0), uv[valid].max(0)
        np.testing.assert_allclose(annot['bbox'][2:], 1.2 * (hi - lo), atol=2e-3)
        np.testing.assert_allclose(np.array(annot['bbox'][:2]) + np.array(annot['bbox'][2:]) / 2, (lo + hi) / 2, atol=2e-3)
        assert (np.array(frame['world_coord'])[~np.array(frame['joint_valid'])] == 1).all()


def test_layout_and_skeleton(tiny_root):
    root = Path(tiny_root)
    lines = (root / 'annotations' / 'skeleton.txt').read_text().splitlines()
    assert lines[0].startswith('#') and len(lines) == 43 and all(len(l.split(' ')) == 3 for l in lines[1:])
    data = load(root, 'train', 'data')
    sizes = {(i['width'], i['height']) for i in data['images']}
    assert sizes <= {(334, 512), (512, 334)}
    assert any(i['camera'].startswith('41') for i in data['images'])
    import cv2
    for image in data['images'][:20]:
        path = root / 'images' / 'train' / image['file_name']
        assert path.parts[-4].startswith('Capture') and path.parts[-2].startswith('cam') and path.name == f"image{image['frame_idx']}.jpg"
        assert cv2.imread(str(path)).shape == (image['height'], image['width'], 3)
