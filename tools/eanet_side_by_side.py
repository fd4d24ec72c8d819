"""Our loader and training step beside those of EANet (jkpark0825/EANet), on the same synthetic data, machine and run.

    git clone https://github.com/jkpark0825/EANet /tmp/EANet     # anywhere outside this repository; never commit it
    pip install einops plyfile torchgeometry                      # EANet's own imports
    python tools/eanet_side_by_side.py --eanet /tmp/EANet

EANet's checkout is not touched: it is copied to a temporary folder without its MANO files and pointed at our
synthetic world there (`data/InterHand26M/{images,annotations}` linked to the world, `_data_hm.json` linked to
`_data.json`, a `J_regressor_ih26m_mano.npy` written from our MANO-format hand, `human_model_path` set to it). On a
machine without CUDA its hard-coded `.cuda()` calls and `Jr(device='cuda')` become no-ops, and torchgeometry's
rotation-to-angle-axis (which subtracts bool tensors, an error in torch ≥ 1.2) is replaced by a correct one.
ImageNet initialisation is skipped on both sides: it changes the starting weights, not the cost of a step.

Loaders: samples/s, best of two shuffled passes over the train split with augmentation, the same batch size and
workers for each. Training steps: images/s of forward, loss, backward and optimiser step on one fixed batch read
from each side's own loader (so no loading is timed), after warm-up steps, in fp32 and under bf16 autocast.
Results go to one JSON (`--out`), which the Training chapter reads for its table; the same table is written between
the README's `<!-- eanet-side-by-side -->` markers (`--readme ''` leaves the README alone).
"""
from __future__ import annotations

import argparse, json, os, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
import torchvision

from gesthand.crops import CropDataset, augment_margin, loader_rate, pack_crops, packed_size
from gesthand.data import DataConfig, InterHandDataset
from gesthand.experiment import experiment_config, stage2_model, stage_objective
from gesthand.results import device_name, git_commit
from gesthand.mano import load_mano_arrays, mano_dir
from gesthand.skeleton import IH_FROM_MANO, TIP_VERTEX_IDS
from gesthand.synth import synthetic_interhand_root
from gesthand.training import TrainConfig, Trainer, side_by_side_table

SPLITS = ('train', 'val', 'test')
ROOT = Path(__file__).resolve().parents[1]
README_MARKERS = ('<!-- eanet-side-by-side -->', '<!-- /eanet-side-by-side -->')


def ih26m_regressor(mano_folder: Path) -> np.ndarray:
    "(21, 778) vertices-to-joints regressor in InterHand2.6M joint order: MANO's 16 joints and the 5 tip vertices"
    rows = np.concatenate([load_mano_arrays('right', mano_folder)['J_regressor'], np.eye(778)[list(TIP_VERTEX_IDS)]])
    return rows[list(IH_FROM_MANO)].astype(np.float32)


def eanet_workdir(eanet: Path, world: Path, mano_folder: Path, work: Path) -> Path:
    "A copy of the EANet checkout in `work`, reading `world` and our MANO files; returns its `main` folder"
    if not (eanet / 'main' / 'config.py').exists():
        raise FileNotFoundError(f'{eanet} is not an EANet checkout: it lacks main/config.py')
    code = work / 'EANet'
    shutil.copytree(eanet, code, ignore=shutil.ignore_patterns('.git', 'human_model_files', 'output', '*.pkl'))
    data = code / 'data' / 'InterHand26M'
    (data / 'images').symlink_to(world / 'images', target_is_directory=True)
    for split in SPLITS:
        folder = data / 'annotations' / split
        folder.mkdir(parents=True)
        for source in (world / 'annotations' / split).glob('*.json'):
            (folder / source.name).symlink_to(source)
        (folder / f'InterHand2.6M_{split}_data_hm.json').symlink_to(world / 'annotations' / split / f'InterHand2.6M_{split}_data.json')
    np.save(data / 'J_regressor_ih26m_mano.npy', ih26m_regressor(mano_folder))
    (work / 'human_model_files').mkdir()
    (work / 'human_model_files' / 'mano').symlink_to(mano_folder, target_is_directory=True)  # smplx.create's layout
    return code / 'main'


def rotation_matrix_to_angle_axis(matrix: torch.Tensor) -> torch.Tensor:
    "Axis-angle (B, 3) of rotation matrices (B, 3, 3) or (B, 3, 4), the call signature of torchgeometry's"
    R = matrix[:, :3, :3]
    cos = ((R.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1 + 1e-7, 1 - 1e-7)
    angle = torch.acos(cos)
    axis = torch.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], -1)
    return axis * (angle / (2 * torch.sin(angle)))[:, None]


def import_eanet(main: Path, human_model_path: Path):
    "EANet's config, InterHand26M dataset and get_model, imported from the copy in `main`; the working directory becomes `main`"
    if not torch.cuda.is_available():  # EANet calls .cuda() throughout; on a CPU machine they stay where they are
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    import torchvision.models.resnet as tv_resnet
    if not hasattr(tv_resnet, 'model_urls'):  # removed in torchvision 0.13; EANet imports it (for the skipped download)
        tv_resnet.model_urls = {f'resnet{d}': None for d in (18, 34, 50, 101, 152)}
    import torchgeometry
    torchgeometry.rotation_matrix_to_angle_axis = rotation_matrix_to_angle_axis
    os.chdir(main)  # EANet's dataset reads '../data/InterHand26M' relative to main/
    sys.path.insert(0, str(main))
    from config import cfg
    cfg.human_model_path = str(human_model_path)
    import InterHand26M as ih26m
    if not torch.cuda.is_available(): ih26m.Jr.__init__.__defaults__ = ('cpu',)
    from model import get_model
    return cfg, ih26m.InterHand26M, get_model


def trainable_millions(model: torch.nn.Module) -> float:
    "Trainable parameters of `model`, in millions"
    return round(sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6, 2)


def timed_steps(step, steps: int, warmup: int) -> float:
    "Seconds per call of `step` over `steps` calls after `warmup` untimed ones"
    for _ in range(warmup): step()
    start = time.perf_counter()
    for _ in range(steps): step()
    return (time.perf_counter() - start) / steps


def eanet_step_rate(get_model, batch, precision: str, steps: int, warmup: int) -> tuple[float, float]:
    "Images/s of EANet's training step (train.py: Adam over its trainable modules, the sum of its loss terms), and its size"
    torch.manual_seed(0)
    model = get_model('test').train()  # 'train' would download ImageNet weights; the step is the same
    params = [p for module in model.trainable_modules for p in module.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    inputs, targets, meta_info = batch
    def step():
        optimizer.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
            loss = model(inputs, targets, meta_info, 'train')
        sum(v.float().mean() for v in loss.values()).backward()
        optimizer.step()
    return len(inputs['img']) / timed_steps(step, steps, warmup), trainable_millions(model)


def our_step_rate(preset: str, name: str, samples: list, precision: str, steps: int, out_dir: Path,
                  overrides: dict | None = None) -> tuple[float, dict]:
    "Images/s of our stage-2 training step (the Trainer's own epoch loop, after a warm-up epoch) on `samples`, and the model"
    config = experiment_config(preset, name=name, **(overrides or {}))
    torch.manual_seed(0)
    model = stage2_model(config)
    loss_fn, inputs = stage_objective(config, 2)
    train = TrainConfig(epochs=2, batch_size=len(samples), lr=config.stage2.lr, workers=0, precision=precision,
                        max_steps_per_epoch=steps, out_dir=str(out_dir))
    trainer = Trainer(model, loss_fn, samples * steps, train, inputs=inputs)
    trainer.train_epoch(0)  # warm-up
    described = {'preset': preset, 'backbone': config.encoder.backbone, 'input_size': config.data.input_size,
                 'parameters_m': trainable_millions(model)}
    return trainer.train_epoch(1)['images_per_s'], described


def loader_rows(loaders: dict, workers: int, batch_size: int) -> list[dict]:
    "samples/s of each (dataset, batch transform, count) of `loaders`, with 0 and `workers` DataLoader workers"
    rows = []
    for name, (dataset, transform, count) in loaders.items():
        for w in sorted({0, workers}):
            loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=w,
                                                 persistent_workers=w > 0)
            rate = loader_rate(loader, transform, count=count)
            rows.append({'loader': name, 'workers': w, 'records': len(dataset), 'samples_per_s': round(rate, 1)})
            print(f'{name:48s} workers {w}: {rate:7.1f} samples/s', flush=True)
    return rows


OUR_MODELS = (('gesthand tokens, paper (HRNet-W32)', 'paper', 'ours', False),
              ('gesthand EANet-style baseline, paper (ResNet-50)', 'paper', 'baseline', False),
              ('gesthand tokens, book (HRNet-W18-small)', 'book', 'ours', True))  # True: book's model at --size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--eanet', type=Path, required=True, help='a checkout of github.com/jkpark0825/EANet (read only)')
    parser.add_argument('--world', default='smoke', help='synthetic preset whose train split both sides read')
    parser.add_argument('--loader-batch', type=int, default=32, help="batch of the loader runs (EANet's train_batch_size)")
    parser.add_argument('--workers', type=int, default=2, help='DataLoader workers (each loader also runs with 0)')
    parser.add_argument('--step-batch', type=int, default=16, help='batch of the training-step runs')
    parser.add_argument('--steps', type=int, default=5, help='timed steps (after as many warm-up steps)')
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--out', type=Path, default=ROOT / 'results' / 'benchmark-eanet-side-by-side.json')
    parser.add_argument('--readme', default=str(ROOT / 'README.md'), help="whose side-by-side table is rewritten ('' for none)")
    args = parser.parse_args(argv)
    out, eanet = args.out.resolve(), args.eanet.resolve()
    readme = Path(args.readme).resolve() if args.readme else None
    world, mano_folder = synthetic_interhand_root(args.world), mano_dir()
    record = {'kind': 'eanet-side-by-side', 'world': args.world, 'git_commit': git_commit(), 'eanet_commit': git_commit(eanet),
              'machine': device_name(torch.device('cuda' if torch.cuda.is_available() else 'cpu')),
              'torch_threads': torch.get_num_threads(), 'settings': {k: str(v) for k, v in vars(args).items()}}
    start_dir = Path.cwd()
    with tempfile.TemporaryDirectory(prefix='eanet-side-by-side-') as tmp:
        tmp = Path(tmp)
        cfg, EANetInterHand, get_model = import_eanet(eanet_workdir(eanet, world, mano_folder, tmp), tmp / 'human_model_files')
        size = cfg.input_img_shape[0]  # EANet's input side (256): ours is set to it
        record['size'] = size
        eanet_train = EANetInterHand(torchvision.transforms.ToTensor(), 'train')
        data = DataConfig(input_size=size)
        ours_jpeg = InterHandDataset(world, 'train', data, train=True)
        unaugmented = InterHandDataset(world, 'train', data, train=False)
        full = packed_size(size, augment_margin(data.augment, data.bbox_scale))
        packed = {stored: CropDataset(pack_crops(unaugmented, tmp / f'packed{stored}', size=stored, workers=args.workers), train=True)
                  for stored in (full, size + 4)}  # the full margin, and about the input's density (upsampled when augmented)
        def images(batch): return len(batch['image'])
        loaders = {'EANet InterHand26M': (eanet_train, None, lambda batch: len(batch[0]['img'])),
                   'gesthand JPEG path': (ours_jpeg, None, images),
                   **{f'gesthand packed (stored {s}²) + batch augmentation': (d, d.crop, images) for s, d in packed.items()}}
        record['loaders'] = loader_rows(loaders, args.workers, args.loader_batch)

        eanet_batch = next(iter(torch.utils.data.DataLoader(eanet_train, batch_size=args.step_batch, shuffle=True)))
        order = torch.randperm(len(ours_jpeg), generator=torch.Generator().manual_seed(0))[:args.step_batch]
        ours_batch = [ours_jpeg[i] for i in order.tolist()]
        at_size = {'data.input_size': size, 'tokens.input_size': size, 'baseline.input_size': size}
        record['steps'] = []
        for precision in args.precisions:
            rate, eanet_params = eanet_step_rate(get_model, eanet_batch, precision, args.steps, args.steps)
            record['steps'].append({'model': 'EANet (ResNet-50, two hands)', 'precision': precision, 'batch': args.step_batch,
                                    'images_per_s': round(rate, 2), 'backbone': 'resnet50', 'input_size': size, 'parameters_m': eanet_params})
            print(f'{"EANet (ResNet-50, two hands)":48s} {precision}: {rate:6.2f} img/s', flush=True)
            for label, preset, name, resized in OUR_MODELS:
                rate, described = our_step_rate(preset, name, ours_batch, precision, args.steps, tmp / 'run', at_size if resized else None)
                record['steps'].append({'model': label, 'precision': precision, 'batch': args.step_batch, 'images_per_s': round(rate, 2), **described})
                print(f'{label:48s} {precision}: {rate:6.2f} img/s', flush=True)
        os.chdir(start_dir)  # out of the folder about to be removed
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    print(f'wrote {out}')
    if readme:
        readme.write_text(readme_with_table(readme.read_text(), record))
        print(f'wrote its table into {readme}')


def readme_with_table(readme: str, record: dict) -> str:
    "`readme` with the text between its side-by-side markers replaced by the record's table"
    start, end = README_MARKERS
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise ValueError(f'the README needs one {start} line followed by one {end} line')
    head, rest = readme.split(start)
    return f'{head}{start}\n{side_by_side_table(record)}\n{end}{rest.split(end)[1]}'


if __name__ == '__main__':
    main()
