"""The data faults of the trust issue, one per test: each injects a fault into a copy of a tiny generated dataset and
checks that the fault is named (file, key, record) or counted (once, by reason), that no annotation is served twice
and that no NaN reaches a sample. The table in the Data chapter (nbs/05_data.ipynb) lists every row."""
import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gesthand.data import (HAND_TYPES, AnnotationError, DataConfig, ImageDecodeError, InterHandDataset, annotation_file, read_image)
from gesthand.skeleton import IH_ROOT

SPLIT = 'test'
ALL = DataConfig(hand_types=HAND_TYPES)  # interacting records too: more records to break


@pytest.fixture(scope='module')
def clean_root(tmp_path_factory):
    "A ten-image dataset: two right, two left and one two-hand sequence, two cameras each (≈ 4 s to generate)"
    from gesthand.gestures import LEFT_SEQUENCES, RIGHT_SEQUENCES
    from gesthand.synth import SynthConfig, generate
    config = SynthConfig(captures={SPLIT: 1}, sequences=RIGHT_SEQUENCES[:2] + LEFT_SEQUENCES[:2],
                         two_hand_sequences=('0266_dh_pray',), cameras_per_frame=2)
    return generate(tmp_path_factory.mktemp('synthetic') / 'interhand', config, workers=1, progress=False)


@pytest.fixture(scope='module')
def clean(clean_root):
    "The clean dataset and the data.json image entry of each record it keeps"
    ds = InterHandDataset(clean_root, SPLIT, ALL)
    images = {img['id']: img for img in json.loads(annotation_file(clean_root, SPLIT, 'data').read_text())['images']}
    assert len(ds) >= 6 and set(ds.skipped) <= {'no_valid_joints'}
    return ds, [images[int(i)] for i in ds.records['image_id']]


@pytest.fixture
def root(clean_root, tmp_path):
    "A writable copy of the clean dataset, for one fault"
    return Path(shutil.copytree(clean_root, tmp_path / 'interhand'))


def edit(root, kind, change):
    "Apply `change` to the content of one annotation file of the split; return the file's path"
    path = annotation_file(root, SPLIT, kind)
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    return path


def annotation(content, annot_id):
    return next(a for a in content['annotations'] if a['id'] == annot_id)


def image_entry(content, image_id):
    return next(i for i in content['images'] if i['id'] == image_id)


def served(ds):
    "Annotation ids of every sample of `ds`, asserting each is served once and every number in it is finite"
    ids = []
    for i in range(len(ds)):
        sample = ds[i]
        for key, value in sample.items():
            if value.is_floating_point(): assert torch.isfinite(value).all(), (key, int(sample['annot_id']))
        ids.append(int(sample['annot_id']))
    assert len(ids) == len(set(ids)), ids
    return ids


def plus(ds, **injected):
    "The skip counts of the clean dataset `ds` plus the injected ones"
    return ds.skipped + Counter(injected)


# --- item 5: silent data losses ------------------------------------------------------------------------------------

def test_missing_mano_file_is_an_error_unless_declared(root, clean):
    ds, _ = clean
    annotation_file(root, SPLIT, 'MANO_NeuralAnnot').unlink()
    with pytest.raises(FileNotFoundError, match=r'InterHand2\.6M_test_MANO_NeuralAnnot\.json.*require_mano=False'):
        InterHandDataset(root, SPLIT, ALL)
    declared = InterHandDataset(root, SPLIT, DataConfig(hand_types=HAND_TYPES, require_mano=False))
    assert len(declared) == len(ds) and not declared.records['mano_valid'].any()
    assert ds.records['mano_valid'].any()  # the clean dataset does have MANO supervision
    assert len(InterHandDataset(root, SPLIT, ALL, mano=False)) == len(ds)
    with pytest.raises(FileNotFoundError, match='other_mano.json'):
        InterHandDataset(root, SPLIT, DataConfig(hand_types=HAND_TYPES, require_mano=False), mano=root / 'other_mano.json')


def test_degenerate_bboxes_are_counted_and_never_reach_a_sample(root, clean, caplog):
    ds, _ = clean
    victims = [int(a) for a in ds.records['annot_id'][:2]]
    def degenerate(d):
        x, y, _, _ = annotation(d, victims[0])['bbox']
        annotation(d, victims[0])['bbox'] = [x, y, 0.0, 0.0]  # the zero-size box of an annotation with one valid joint
        annotation(d, victims[1])['bbox'][2] = 1.0            # one or two joints on a line
    edit(root, 'data', degenerate)
    with caplog.at_level(logging.WARNING, logger='gesthand.data'):
        broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, degenerate_bbox=2) and len(broken) == len(ds) - 2
    assert f'annotation id {victims[0]}' in caplog.text and 'degenerate_bbox' in caplog.text
    assert not set(victims) & set(served(broken))


def test_non_finite_coordinates_are_counted_and_never_reach_a_sample(root, clean):
    ds, images = clean
    capture, frame = str(images[0]['capture']), str(images[0]['frame_idx'])
    in_frame = sum(str(i['capture']) == capture and str(i['frame_idx']) == frame for i in images)
    def nan_wrists(j):
        for wrist in (IH_ROOT, IH_ROOT + 21): j[capture][frame]['world_coord'][wrist] = [float('nan')] * 3
    edit(root, 'joint_3d', nan_wrists)
    victim = next(int(a) for a, i in zip(ds.records['annot_id'], images) if str(i['frame_idx']) != frame)
    edit(root, 'data', lambda d: annotation(d, victim)['bbox'].__setitem__(0, float('inf')))
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, non_finite=in_frame + 1) and len(broken) == len(ds) - in_frame - 1
    served(broken)


def test_hands_behind_the_camera_are_counted(root, clean):
    ds, images = clean
    capture, camera = str(images[0]['capture']), images[0]['camera']
    on_camera = sum(str(i['capture']) == capture and i['camera'] == camera for i in images)
    edit(root, 'camera', lambda c: c[capture]['camrot'].__setitem__(camera, (-np.array(c[capture]['camrot'][camera])).tolist()))
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, behind_camera=on_camera)
    served(broken)


def test_hands_without_a_valid_wrist_are_counted(root, clean):
    ds, _ = clean
    victim, left = int(ds.records['annot_id'][0]), bool(ds.records['is_left'][0])
    edit(root, 'data', lambda d: annotation(d, victim)['joint_valid'].__setitem__(IH_ROOT + 21 * left, [0]))
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, no_valid_joints=1) and victim not in broken.records['annot_id']


def test_unknown_gesture_names_are_counted(root, clean, caplog):
    ds, images = clean
    assert ds.unlabeled == Counter(two_hand_sequence=sum(i['seq_name'].startswith('0266') for i in images))
    victims = [int(i) for i, img in zip(ds.records['image_id'], images) if not img['seq_name'].startswith('0266')][:2]
    edit(root, 'data', lambda d: [image_entry(d, v).__setitem__('seq_name', '0000_neutral_relaxd') for v in victims])
    with caplog.at_level(logging.WARNING, logger='gesthand.data'):
        kept = InterHandDataset(root, SPLIT, ALL)
    assert kept.skipped == ds.skipped and len(kept) == len(ds)
    assert kept.unlabeled == ds.unlabeled + Counter(unknown_gesture=2)
    assert (kept.records['coarse'][np.isin(kept.records['image_id'], victims)] == -1).all()
    assert '0000_neutral_relaxd' in caplog.text
    labeled = InterHandDataset(root, SPLIT, DataConfig(hand_types=HAND_TYPES, labeled_only=True))
    assert labeled.skipped == plus(ds, unknown_gesture=2) and not np.isin(labeled.records['image_id'], victims).any()
    assert (labeled.records['coarse'] >= 0).all()


def test_bad_images_are_dropped_and_counted_in_the_main_process(root, clean):
    ds, _ = clean
    paths = [Path(root) / Path(p).relative_to(ds.root) for p in ds.records['path'][:3]]
    paths[0].write_bytes(paths[0].read_bytes()[:2000])                                      # truncated JPEG
    paths[1].write_bytes(b'<html>404 not found</html>')                                     # not an image at all
    png = cv2.imencode('.png', cv2.imread(str(paths[2])))[1].tobytes()
    paths[2].write_bytes(png[:len(png) // 2])                                               # truncated PNG named .jpg
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, bad_image=3) and len(broken) == len(ds) - 3
    loader = torch.utils.data.DataLoader(broken, batch_size=2, num_workers=2)
    ids = [int(i) for batch in loader for i in batch['annot_id']]
    assert sorted(ids) == sorted(int(i) for i in broken.records['annot_id']) and len(set(ids)) == len(ids)
    assert broken.skipped == plus(ds, bad_image=3)  # nothing is counted later, in a worker
    assert not set(ids) & {int(i) for i in ds.records['annot_id'][:3]}


@pytest.mark.parametrize('fault, message', [(lambda b: b[:2000], 'truncated JPEG (no end-of-image marker)'),
                                            (lambda b: b'GIF89a' + b[6:], 'not a JPEG or PNG image'),
                                            (lambda b: b'', 'empty image file')])
def test_bad_image_with_raise_names_file_and_record(root, clean, fault, message):
    ds, _ = clean
    path = Path(root) / Path(ds.records['path'][0]).relative_to(ds.root)
    path.write_bytes(fault(path.read_bytes()))
    with pytest.raises(ImageDecodeError) as error:
        InterHandDataset(root, SPLIT, DataConfig(hand_types=HAND_TYPES, on_bad_image='raise'))
    text = str(error.value)
    assert message in text and str(path) in text
    assert f"annotation id {ds.records['annot_id'][0]}, image id {ds.records['image_id'][0]}" in text


def test_png_saved_as_jpg_is_decoded_as_png(root, clean):
    ds, _ = clean
    path = Path(root) / Path(ds.records['path'][0]).relative_to(ds.root)
    pixels = read_image(str(path))
    path.write_bytes(cv2.imencode('.png', pixels)[1].tobytes())
    disguised = InterHandDataset(root, SPLIT, ALL)
    assert disguised.skipped == ds.skipped and len(disguised) == len(ds)
    np.testing.assert_array_equal(read_image(str(path)), pixels)
    assert torch.equal(disguised[0]['image'], ds[0]['image'])
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ImageDecodeError, match='truncated PNG'):
        InterHandDataset(root, SPLIT, DataConfig(hand_types=HAND_TYPES, on_bad_image='raise'))


def test_image_damaged_after_indexing_raises_instead_of_serving_another(root):
    ds = InterHandDataset(root, SPLIT, ALL)
    path = Path(ds.records['path'][1])
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ImageDecodeError) as error:
        ds[1]
    assert str(path) in str(error.value)
    assert f"image id {ds.records['image_id'][1]}, annotation id {ds.records['annot_id'][1]}" in str(error.value)
    assert int(ds[0]['annot_id']) == ds.records['annot_id'][0] and int(ds[2]['annot_id']) == ds.records['annot_id'][2]


def test_gaps_are_counted(root, clean):
    ds, images = clean
    paths = [Path(root) / Path(p).relative_to(ds.root) for p in ds.records['path']]
    paths[0].unlink()
    capture, frame = str(images[-1]['capture']), str(images[-1]['frame_idx'])
    in_frame = sum(str(i['capture']) == capture and str(i['frame_idx']) == frame for i in images)
    edit(root, 'joint_3d', lambda j: j[capture].pop(frame))
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, missing_image=1, missing_joint_3d=in_frame)
    served(broken)


def test_missing_camera_is_counted(root, clean):
    ds, images = clean
    capture, camera = str(images[0]['capture']), images[0]['camera']
    on_camera = sum(str(i['capture']) == capture and i['camera'] == camera for i in images)
    edit(root, 'camera', lambda c: [c[capture][key].pop(camera) for key in ('campos', 'camrot', 'focal', 'princpt')])
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, missing_camera=on_camera)
    served(broken)


# --- item 6: errors that name the file, the key and the record ----------------------------------------------------

@pytest.mark.parametrize('kind', ['data', 'camera', 'joint_3d', 'MANO_NeuralAnnot'])
def test_truncated_json_names_the_file(root, kind):
    path = annotation_file(root, SPLIT, kind)
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(AnnotationError, match='not valid JSON') as error:
        InterHandDataset(root, SPLIT, ALL)
    assert str(path) in str(error.value)


def first_right_hand(images, ds):
    "(annotation id, image id, capture, frame) of the first kept right-hand single-hand record"
    i = next(k for k, img in enumerate(images) if img['seq_name'].startswith('00'))
    return int(ds.records['annot_id'][i]), int(ds.records['image_id'][i]), str(images[i]['capture']), str(images[i]['frame_idx'])


WRONG_SIZES = {  # kind, key, the edit, the size found
    'data joint_valid': ('data', 'joint_valid', lambda d, a, i, c, f, cam: annotation(d, a).__setitem__('joint_valid', [[1]] * 21), 21),
    'data bbox': ('data', 'bbox', lambda d, a, i, c, f, cam: annotation(d, a).__setitem__('bbox', [1.0, 2.0, 3.0]), 3),
    'joint_3d world_coord': ('joint_3d', 'world_coord', lambda j, a, i, c, f, cam: j[c][f].__setitem__('world_coord', [[0, 0, 1]] * 21), 63),
    'joint_3d joint_valid': ('joint_3d', 'joint_valid', lambda j, a, i, c, f, cam: j[c][f].__setitem__('joint_valid', [True] * 21), 21),
    'MANO pose': ('MANO_NeuralAnnot', 'pose', lambda m, a, i, c, f, cam: m[c][f]['right'].__setitem__('pose', [0.0] * 21), 21),
    'camera focal': ('camera', 'focal', lambda k, a, i, c, f, cam: k[c]['focal'].__setitem__(cam, [1270.0]), 1),
}


@pytest.mark.parametrize('case', list(WRONG_SIZES))
def test_wrong_length_arrays_name_file_key_and_record(root, clean, case):
    ds, images = clean
    kind, key, change, found = WRONG_SIZES[case]
    annot_id, image_id, capture, frame = first_right_hand(images, ds)
    camera = next(img['camera'] for img in images if img['id'] == image_id)
    path = edit(root, kind, lambda content: change(content, annot_id, image_id, capture, frame, camera))
    with pytest.raises(AnnotationError) as error:
        InterHandDataset(root, SPLIT, ALL)
    record = {'data': f'annotation id {annot_id}, image id {image_id}', 'joint_3d': f'capture {capture}, frame {frame}',
              'MANO_NeuralAnnot': f'capture {capture}, frame {frame}, right hand', 'camera': f'capture {capture}, camera {camera}'}[kind]
    assert str(error.value).startswith(f'{path.name}: {key!r} has {found} values') and str(error.value).endswith(f'({record})')
    assert 'cannot reshape' not in str(error.value)


def test_missing_key_names_file_key_and_record(root, clean):
    ds, _ = clean
    victim = int(ds.records['annot_id'][0])
    edit(root, 'data', lambda d: annotation(d, victim).pop('hand_type_valid'))
    with pytest.raises(AnnotationError, match=rf"InterHand2\.6M_test_data\.json: missing key 'hand_type_valid' \(annotation id {victim}\)"):
        InterHandDataset(root, SPLIT, ALL)


# --- item 7: paths -------------------------------------------------------------------------------------------------

def test_paths_outside_the_root_are_counted(root, clean):
    ds, images = clean
    outside = root.parent / 'outside.jpg'
    shutil.copyfile(Path(ds.records['path'][0]), outside)  # a readable image, so only the path rule can refuse it
    names = {int(ds.records['image_id'][0]): '../../../outside.jpg',
             int(ds.records['image_id'][1]): str(outside),
             int(ds.records['image_id'][2]): '../val/' + images[2]['file_name'],
             int(ds.records['image_id'][3]): 'Capture0/../' + images[3]['file_name']}  # stays inside: kept
    edit(root, 'data', lambda d: [image_entry(d, i).__setitem__('file_name', n) for i, n in names.items()])
    broken = InterHandDataset(root, SPLIT, ALL)
    assert broken.skipped == plus(ds, path_outside_root=3) and len(broken) == len(ds) - 3
    assert int(ds.records['image_id'][3]) in broken.records['image_id']
    images_dir = (root / 'images' / SPLIT).resolve()
    assert all(Path(p).resolve().is_relative_to(images_dir) for p in broken.records['path'])
    served(broken)
