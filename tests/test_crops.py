"The packed crop cache: same sample dict as the JPEG path, exact camera under batch augmentation, shard round trip and rank split"
import copy, os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from gesthand.crops import CropDataset, pack_crops, shard_dataset, write_shards
from gesthand.data import DataConfig, InterHandDataset
from gesthand.geometry import project_points


@pytest.fixture(scope='module')
def jpeg(tiny_root):
    return InterHandDataset(tiny_root, 'train', DataConfig(input_size=64), train=False)

@pytest.fixture(scope='module')
def pack(jpeg, tmp_path_factory):
    return pack_crops(jpeg, tmp_path_factory.mktemp('crops') / 'tiny64')

@pytest.fixture(scope='module')
def batch(pack):
    packed = CropDataset(pack, train=True)
    return packed, default_collate([packed[i] for i in range(len(packed))])


def test_unaugmented_equals_jpeg_path(jpeg, pack):
    cached = CropDataset(pack)
    assert len(cached) == len(jpeg)
    for i in range(0, len(jpeg), 11):
        a, b = jpeg[i], cached[i]
        assert {k: (v.dtype, v.shape) for k, v in a.items()} == {k: (v.dtype, v.shape) for k, v in b.items()}
        assert (a['image'] - b['image']).abs().max() < 1e-3
        for k in a:
            if k != 'image': torch.testing.assert_close(b[k].double(), a[k].double(), atol=1e-3, rtol=1e-5)


def test_augmented_batch_keeps_camera_exact(jpeg, batch):
    packed, b = batch
    params = packed.crop.draw(len(packed), torch.Generator().manual_seed(0))
    out = packed.crop(b, params)
    assert {k: (v.dtype, v.shape[1:]) for k, v in out.items()} == {k: (v.dtype, v.shape) for k, v in jpeg[0].items()}
    torch.testing.assert_close(project_points(out['cam_intrinsics'].double(), out['joints_cam'].double()),
                               out['joints_img'].double(), atol=1e-3, rtol=0)
    for i in range(0, len(jpeg), 13):  # the same draws give the JPEG path's sample
        view = copy.copy(jpeg); view.train = True
        view.augmentation = lambda: (params['scale'][i], params['rotation'][i], params['shift'][i], params['colour'][i], False)
        reference = view[i]
        for k in reference:
            if k != 'image': torch.testing.assert_close(out[k][i].double(), reference[k].double(), atol=2e-3, rtol=1e-4)
        assert (out['image'][i] - reference['image']).abs().mean() < 0.03


def test_shards_round_trip_and_split_across_ranks(batch, tmp_path, monkeypatch):
    packed, _ = batch
    write_shards(packed, tmp_path, maxcount=40)
    read = list(shard_dataset(tmp_path))
    assert len(read) == len(packed)
    for i, sample in enumerate(read):
        reference = packed.packed(i)
        assert (sample['image'].float() - reference['image'].float()).abs().mean() < 3
        for k in reference:
            if k != 'image': assert torch.equal(sample[k], reference[k]), k
    ids = []
    for rank in range(2):
        monkeypatch.setenv('RANK', str(rank)); monkeypatch.setenv('WORLD_SIZE', '2')
        ids.append([int(s['annot_id']) for s in DataLoader(shard_dataset(tmp_path), batch_size=None, num_workers=2)])
    assert not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == sorted(packed.arrays['annot_id'].tolist())
