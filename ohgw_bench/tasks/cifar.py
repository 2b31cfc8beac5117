"""CIFAR-10 / CIFAR-100 with ResNet-20 (He et al. 2016), SGD, the python pickle batches.

Data: the archives ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` unpacked under the
data dir, read directly with pickle (torchvision's CIFAR classes check the published md5 sums,
so a tiny test set in the same format could not pass through them). The validation split is
carved out of the training batches by ``split_seed``; the official test batch is the test split.

Training: images stay uint8 on the device; each batch is normalised, cropped (padding 4) and
flipped there, and gets the magnitude-scaled photometric/noise term of
:mod:`ohgw_bench.tasks.vision_common`. The learning rate follows a cosine schedule over
``max_epochs`` (default 81 = 3^4, the top rung of an eta=3 ASHA), so a trial trained to epoch
e is exactly the first e epochs of the full run and rungs compare prefixes of one curve.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ohgw_bench.hypergrad import SGD, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity
from ohgw_bench.tasks.common import default_device, units_cost
from ohgw_bench.tasks.label_noise import LABEL_NOISE, noisy_labels
from ohgw_bench.tasks.vision_common import (
    Batch,
    VisionState,
    VisionTask,
    batch_seed,
    crop_flip,
    draw_augmentation,
    halve_first_batch,
    image_flops,
    sgd_optimizer,
)

PAD = 4
VAL_BATCH = 256
EVAL_CHUNK = 1000


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions; option-A shortcut (stride-2 subsampling, zero-padded channels)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.extra = cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:
            short = F.pad(short, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(out + short)


class ResNet20(nn.Module):
    """3 stages x 3 basic blocks, 16/32/64 channels: 0.27M parameters for 10 classes."""

    def __init__(self, num_classes: int = 10, blocks_per_stage: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers: list[nn.Module] = []
        cin = 16
        for stage, cout in enumerate((16, 32, 64)):
            for b in range(blocks_per_stage):
                layers.append(_BasicBlock(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


def make_resnet20(num_classes: int, seed: int) -> ResNet20:
    """He-normal convolutions from a generator seeded by the trial seed (global RNG untouched)."""
    g = torch.Generator().manual_seed(seed)
    model = ResNet20(num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return model


class CifarState(VisionState):
    """config, seed, model, optimizer, fidelity (epochs trained)."""


_LAYOUT = {
    10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels",
         "<data-dir>/cifar-10-batches-py/{data_batch_1..data_batch_5,test_batch,batches.meta} "
         "(cifar-10-python.tar.gz unpacked)"),
    100: ("cifar-100-python", ["train"], ["test"], b"fine_labels",
          "<data-dir>/cifar-100-python/{train,test,meta} (cifar-100-python.tar.gz unpacked)"),
}


def read_cifar_batches(folder: Path, names: list[str], label_key: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, 32, 32) and int64 labels from the official pickle files."""
    xs, ys = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            blob = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(blob[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(blob[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def write_cifar_batches(folder: Path, num_classes: int, n_train: int, n_test: int, seed: int = 0) -> None:
    """A tiny random dataset in the exact on-disk format (for tests and conformance runs)."""
    sub, train_names, test_names, label_key, _ = _LAYOUT[num_classes]
    root = folder / sub
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def dump(name: str, n: int) -> None:
        labels = rng.integers(0, num_classes, n)
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), label_key: labels.tolist(), b"data": data,
                         b"filenames": [f"img_{i}.png".encode() for i in range(n)]}, f)

    per = [n_train // len(train_names) + (i < n_train % len(train_names)) for i in range(len(train_names))]
    for name, n in zip(train_names, per):
        dump(name, n)
    for name in test_names:
        dump(name, n_test)
    meta = "batches.meta" if num_classes == 10 else "meta"
    key = b"label_names" if num_classes == 10 else b"fine_label_names"
    with open(root / meta, "wb") as f:
        pickle.dump({key: [f"class_{i}".encode() for i in range(num_classes)]}, f)


class CifarTask(VisionTask):
    """CIFAR-10/100, ResNet-20, SGD (Nesterov by default), cosine lr over ``max_epochs``; fidelity = epochs.

    Training loop, evaluation, save/load and the warm-start problem's assembly come from
    :class:`~ohgw_bench.tasks.vision_common.VisionTask`; this class supplies the data, the model
    and the batches.

    tau: ResNet-20 reaches about 91.3% (CIFAR-10) and 68-69% (CIFAR-100) test accuracy after a
    full schedule; the default thresholds (val_error 0.15 and 0.45) are reached by good configs
    around rung 27 of 81. One full epoch (45k train, 15k evaluated) is 1.2e13 FLOPs = 6 simulated
    seconds, so the default budget of 4 h is ~2,400 epochs: an eta=3 ASHA brings its first trial
    to epoch 81 after roughly 300.
    """

    id = "cifar10-resnet20-v1"
    description = "CIFAR python pickle batches, ResNet-20 (0.27M parameters), SGD"
    metric = "val_error"
    mode = "min"
    test_metric = "test_error"
    tau = 0.15
    hypergrad_method = "autograd"
    default_horizon = 1
    default_budget = 4 * 3600.0
    # Effective throughput of one A100-class GPU on ResNet-20 training in float32: about 8,000
    # images/s x ~0.25 GFLOP per image (forward + backward) = 2e12 FLOP/s.
    reference_flops_per_second = 2e12
    conformance_fidelities = (1, 2)

    option_declarations = (LABEL_NOISE,)

    def __init__(self, data_dir: Any = None, num_classes: int = 10, split_seed: int = 0,
                 val_size: int = 5000, train_size: int | None = None, batch_size: int = 128,
                 max_epochs: int = 81, nesterov: bool = True, device: str | None = None,
                 label_noise: float = 0.0):
        if num_classes not in _LAYOUT:
            raise ValueError(f"num_classes must be 10 or 100, got {num_classes}")
        super().__init__(data_dir, num_classes=num_classes, split_seed=split_seed, val_size=val_size,
                         train_size=train_size, batch_size=batch_size, max_epochs=max_epochs,
                         nesterov=nesterov, device=device, label_noise=label_noise)
        self.label_noise = float(label_noise)
        self.num_classes = num_classes
        self.split_seed = split_seed
        self.val_size = val_size
        self.train_size = train_size
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.nesterov = nesterov
        self.tau = 0.15 if num_classes == 10 else 0.45
        self.device = torch.device(device) if device else default_device()
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._mean_std: tuple[torch.Tensor, torch.Tensor] | None = None
        self._image_flops: tuple[float, float] | None = None

    @property
    def space(self) -> SearchSpace:
        return SearchSpace([
            Hyperparameter("lr", 1e-3, 1.0, 0.1, log=True, prior=1.0),
            Hyperparameter("weight_decay", 1e-6, 1e-2, 5e-4, log=True),
            Hyperparameter("momentum", 0.0, 0.99, 0.9),
            Hyperparameter("aug_magnitude", 0.0, 1.0, 0.2),
            Hyperparameter("label_smoothing", 0.0, 0.3, 0.0),
        ])

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity("epochs", 1, self.max_epochs, "epochs")

    @classmethod
    def conformance_setup(cls, tmp_dir: Path) -> dict[str, Any]:
        write_cifar_batches(Path(tmp_dir), 10, n_train=24, n_test=8)
        write_cifar_batches(Path(tmp_dir), 100, n_train=24, n_test=8)
        return {"data_dir": Path(tmp_dir), "batch_size": 8}

    # data

    def prepare(self) -> None:
        if self._data is not None:
            return
        sub, train_names, test_names, label_key, layout = _LAYOUT[self.num_classes]
        folder = self.data_dir / sub
        missing = [n for n in train_names + test_names if not (folder / n).is_file()]
        if missing:
            raise self.data_missing(f"CIFAR-{self.num_classes} python batches ({', '.join(missing)})", layout)
        x, y = read_cifar_batches(folder, train_names, label_key)
        tx, ty = read_cifar_batches(folder, test_names, label_key)
        n_val = min(self.val_size, len(x) // 5)
        order = torch.from_numpy(np.random.default_rng(self.split_seed).permutation(len(x)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if self.train_size is not None:
            train_idx = train_idx[: self.train_size]
        if len(train_idx) < 2 or n_val < 1 or len(tx) < 1:
            raise self.data_missing("enough CIFAR images (at least 2 train, 1 val, 1 test)", layout)
        train_x = x[train_idx]
        total = torch.zeros(3, dtype=torch.float64)
        total_sq = torch.zeros(3, dtype=torch.float64)
        for i in range(0, len(train_x), 5000):
            chunk = train_x[i:i + 5000].double()
            total += chunk.sum(dim=(0, 2, 3))
            total_sq += (chunk ** 2).sum(dim=(0, 2, 3))
        count = len(train_x) * 32 * 32
        mean = total / count
        std = (total_sq / count - mean ** 2).clamp_min(1e-6).sqrt()
        dev = self.device
        self._mean_std = (mean.float().view(1, 3, 1, 1).to(dev), std.float().view(1, 3, 1, 1).to(dev))
        train_y = noisy_labels(y[train_idx], self.num_classes, self.label_noise, self.split_seed)
        self._data = {"train": (train_x.to(dev), train_y.to(dev)),
                      "val": (x[val_idx].to(dev), y[val_idx].to(dev)),
                      "test": (tx.to(dev), ty.to(dev))}

    @property
    def data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.prepare()
        assert self._data is not None
        return self._data

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        assert self._mean_std is not None
        mean, std = self._mean_std
        return (x.float() - mean) / std

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.data["train"][0]) // self.batch_size)

    def _epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(batch_seed(seed, epoch, 0, stream=1))
        return torch.randperm(len(self.data["train"][0]), generator=g)

    def _batch(self, order: torch.Tensor, seed: int, epoch: int, b: int) -> Batch:
        """(x cropped and flipped, y, contrast, colour, noise) for batch ``b`` of ``epoch``."""
        x_all, y_all = self.data["train"]
        bs = min(self.batch_size, len(order))
        idx = order[b * bs:(b + 1) * bs].to(self.device)
        x = self._normalise(x_all[idx])
        offsets, flips, draws = draw_augmentation(len(idx), 3, 32, PAD, batch_seed(seed, epoch, b), self.device)
        return (crop_flip(x, offsets, flips, PAD), y_all[idx], *draws)

    def _unit_batches(self, seed: int, epoch: int) -> Iterator[Batch]:
        """The training batches of one epoch (the fidelity unit), in the epoch's shuffled order."""
        order = self._epoch_order(seed, epoch)
        for b in range(self.steps_per_epoch):
            yield self._batch(order, seed, epoch, b)

    def _eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.data[split]
        for i in range(0, len(x), EVAL_CHUNK):
            yield self._normalise(x[i:i + EVAL_CHUNK]), y[i:i + EVAL_CHUNK]

    # training (the loop, evaluation and save/load are VisionTask's)

    def _model(self, seed: int) -> nn.Module:
        return make_resnet20(self.num_classes, seed).to(self.device)

    def init_state(self, config: Mapping[str, Any], seed: int) -> CifarState:
        config = dict(config)
        model = self._model(seed)
        return CifarState(config, seed, model, sgd_optimizer(model, config, self.nesterov))

    # cost

    def flops_per_image(self) -> tuple[float, float]:
        """(one training step, one inference) FLOPs per image, counted once on the CPU."""
        if self._image_flops is None:
            self._image_flops = image_flops(make_resnet20(self.num_classes, 0), 32, self.space.default_config())
        return self._image_flops

    def epoch_flops(self) -> float:
        """FLOPs of one epoch of training plus one evaluation of val and test."""
        step, infer = self.flops_per_image()
        bs = min(self.batch_size, len(self.data["train"][0]))
        n_eval = len(self.data["val"][0]) + len(self.data["test"][0])
        return step * bs * self.steps_per_epoch + infer * n_eval

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return units_cost(start, stop, self.epoch_flops(), self.reference_flops_per_second)

    # warm-start

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch: bool = False) -> HyperProblem:
        """The trial's own w0 and first batches (epoch 0, lr factor 1); V = a fixed validation batch.

        With ``split_batch`` the first batch is halved: the lookahead trains on the first half and
        V is the second half without augmentation.
        """
        order = self._epoch_order(seed, 0)
        batches = []
        for b in range(max(1, horizon)):
            epoch, i = divmod(b, self.steps_per_epoch)
            batches.append(self._batch(order if epoch == 0 else self._epoch_order(seed, epoch), seed, epoch, i))
        if split_batch:
            train, half = halve_first_batch(batches)
            bs = min(self.batch_size, len(order))
            idx = order[:bs][half:].to(self.device)
            val: Batch = (self._normalise(self.data["train"][0][idx]), batches[0][1][half:])
        else:
            train = batches
            vx, vy = self.data["val"]
            val = (self._normalise(vx[:VAL_BATCH]), vy[:VAL_BATCH])
        opt = SGD(lr="lr", momentum="momentum", weight_decay="weight_decay", nesterov=self.nesterov)
        return self._problem(config, seed, train, val, opt)
