"""The synthetic world read the way a user of the real files would read it: plain json, plain smplx, plain pinhole.

CI checks the `tiny` preset; `GESTHAND_CONTRACT_PRESET=smoke` (or `book`) checks a larger one the same way.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

TIPS = [745, 317, 444, 556, 673]  # thumb, index, middle, ring, pinky (EANet / IntagHand)
IH_FROM_MANO = [16, 15, 14, 13, 17, 3, 2, 1, 18, 6, 5, 4, 19, 12, 11, 10, 20, 9, 8, 7, 0]


def load(root, split, kind):
    return json.loads((Path(root) / 'annotations' / split / f'InterHand2.6M_{split}_{kind}.json').read_text())


def camera_frame(cameras, image, world_coord):
    "The camera of `image` (its parameters as arrays) and `world_coord` in that camera's frame (mm)"
    cam = {k: np.array(v[image['camera']]) for k, v in cameras[str(image['capture'])].items()}
    return cam, (np.array(world_coord) - cam['campos']) @ cam['camrot'].T


@pytest.fixture(scope='module')
def world_root(tiny_root):
    "The dataset under test: the tiny one, or the cached preset named by $GESTHAND_CONTRACT_PRESET"
    preset = os.environ.get('GESTHAND_CONTRACT_PRESET', 'tiny')
    if preset == 'tiny': return tiny_root
    from gesthand.synth import synthetic_interhand_root
    return synthetic_interhand_root(preset)


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


def test_neuralannot_params_reproduce_world_joints(world_root, mano_layers):
    joints3d, mano = load(world_root, 'test', 'joint_3d'), load(world_root, 'test', 'MANO_NeuralAnnot')
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


def test_annotations_follow_interhand_definitions(world_root):
    data, cameras, joints3d = (load(world_root, 'test', k) for k in ('data', 'camera', 'joint_3d'))
    assert len(data['images']) == len(data['annotations']) > 0
    for image, annot in zip(data['images'], data['annotations']):
        frame = joints3d[str(image['capture'])][str(image['frame_idx'])]
        cam, xyz = camera_frame(cameras, image, frame['world_coord'])
        uv = xyz[:, :2] / xyz[:, 2:] * cam['focal'] + cam['princpt']
        inside = (uv >= 0).all(1) & (uv[:, 0] <= image['width'] - 1) & (uv[:, 1] <= image['height'] - 1)
        valid = np.array([v[0] for v in annot['joint_valid']], bool)
        np.testing.assert_array_equal(valid, inside & np.array(frame['joint_valid']))
        lo, hi = uv[valid].min(0), uv[valid].max(0)
        np.testing.assert_allclose(annot['bbox'][2:], 1.2 * (hi - lo), atol=2e-3)
        np.testing.assert_allclose(np.array(annot['bbox'][:2]) + np.array(annot['bbox'][2:]) / 2, (lo + hi) / 2, atol=2e-3)
        assert (np.array(frame['world_coord'])[~np.array(frame['joint_valid'])] == 1).all()


def test_layout_and_skeleton(world_root):
    root = Path(world_root)
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


def test_rootnet_output_in_the_official_format(world_root):
    from gesthand.synth import ROOTNET_DEPTH_NOISE_MM
    for split in ('val', 'test'):
        rootnet = json.loads((Path(world_root) / 'rootnet_output' / f'rootnet_interhand2.6m_output_{split}.json').read_text())
        data, cameras, joints3d = (load(world_root, split, k) for k in ('data', 'camera', 'joint_3d'))
        images = {i['id']: i for i in data['images']}
        assert sorted(r['annot_id'] for r in rootnet) == sorted(a['id'] for a in data['annotations'])
        annotations = {a['id']: a for a in data['annotations']}
        errors = []
        for entry in rootnet:
            assert sorted(entry) == ['abs_depth', 'annot_id', 'bbox'] and len(entry['bbox']) == 4 and len(entry['abs_depth']) == 2
            x, y, w, h = entry['bbox']
            assert w == h > 0  # square, as the official preprocessing makes boxes for a square input
            image = images[annotations[entry['annot_id']]['image_id']]
            frame = joints3d[str(image['capture'])][str(image['frame_idx'])]
            _, xyz = camera_frame(cameras, image, frame['world_coord'])
            for k, root in enumerate((20, 41)):  # the wrist of the right and of the left hand
                if frame['joint_valid'][root]: errors.append(entry['abs_depth'][k] - xyz[root, 2])
        errors = np.array(errors)
        assert np.abs(errors).max() <= 3 * ROOTNET_DEPTH_NOISE_MM + 1e-2
        assert abs(errors.mean()) < 10 and 0.6 * ROOTNET_DEPTH_NOISE_MM < errors.std() < 1.2 * ROOTNET_DEPTH_NOISE_MM


def test_no_degenerate_boxes_and_drops_are_counted(world_root):
    from gesthand.data import MIN_BBOX_PX
    info = json.loads((Path(world_root) / 'synthetic.json').read_text())
    assert set(info['dropped_views']) == set(info['config']['captures'])
    for split in info['config']['captures']:
        boxes = np.array([a['bbox'] for a in load(world_root, split, 'data')['annotations']])
        assert (boxes[:, 2:].min(1) >= MIN_BBOX_PX).all()
        assert set(info['dropped_views'][split]) <= {'no_valid_joint', 'degenerate_bbox'}


def test_fingerprint_matches_the_files(world_root):
    from gesthand.synth import dataset_fingerprint
    info = json.loads((Path(world_root) / 'synthetic.json').read_text())
    assert info['fingerprint'] == dataset_fingerprint(world_root)


def test_every_sequence_in_every_split_and_subjects_disjoint(world_root):
    from gesthand.gestures import SINGLE_HAND_SEQUENCES
    subjects = {}
    for split in ('train', 'val', 'test'):
        images = load(world_root, split, 'data')['images']
        assert {i['seq_name'] for i in images} >= set(SINGLE_HAND_SEQUENCES)
        assert {name[:2] for name in SINGLE_HAND_SEQUENCES} == {'00', '01'}  # right- and left-hand sequences
        subjects[split] = {i['subject'] for i in images}
    assert not (subjects['train'] & subjects['val']) and not (subjects['train'] & subjects['test'])
