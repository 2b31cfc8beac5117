"""ImageNet (ILSVRC folder layout) with torchvision's ResNet-50 or a small ViT, random init.

Data: ``<data-dir>/imagenet/train/<wnid>/*.JPEG`` and ``<data-dir>/imagenet/val/<wnid>/*.JPEG``
(the usual layout after sorting the validation images into class folders), read through
``torchvision.datasets.ImageFolder``. Splits: the metric is measured on ``val``; the test
metric on ``<data-dir>/imagenet/test/<wnid>/`` if that folder exists, otherwise on a held-out
half of ``val`` chosen by ``split_seed`` (ILSVRC's own test labels are not public). Each split
is capped at ``eval_size`` images so that an evaluation after every fidelity unit stays cheap.

Pipeline: workers only decode and resize (deterministic: short side to size*8/7, centre crop);
crop-with-padding, flip and the magnitude-scaled photometric/noise term run on the device batch
(:mod:`ohgw_bench.tasks.vision_common`), which makes augmentation magnitude differentiable and
every batch reproducible from (seed, epoch, batch). This replaces the RandomResizedCrop of the
reference recipes. On a GPU, training and evaluation use bfloat16 autocast (no loss scaler
needed) and channels-last; the warm-start lookahead stays in float32.

Fidelity: units of 1/``units_per_epoch`` of an epoch (``epochs`` when units_per_epoch is 1,
the default), up to ``max_epochs`` epochs; the learning rate follows a cosine over the whole
run so rungs compare prefixes of one curve. ResNet-50 trains with SGD (Nesterov); the ViT
with AdamW, where ``momentum`` is AdamW's beta1 (ViTs are not trained with SGD in practice),
and a two-step lookahead, since one AdamW step gives beta1 and the loss-side
hyperparameters almost no gradient (docs/design.md section 4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ohgw_bench.hypergrad import SGD, AdamW, HyperProblem
from ohgw_bench.space import Hyperparameter, SearchSpace
from ohgw_bench.tasks.base import Fidelity
from ohgw_bench.tasks.common import default_device, units_cost
from ohgw_bench.tasks.label_noise import LABEL_NOISE, noisy_labels
from ohgw_bench.tasks.vision_common import (
    Batch,
    VisionState,
    VisionTask,
    augmented_loss,
    batch_seed,
    crop_flip,
    draw_augmentation,
    halve_first_batch,
    image_flops,
    math_attention,
    plain_loss,
    sgd_optimizer,
)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
VAL_BATCH = 64
LAYOUT = ("<data-dir>/imagenet/train/<wnid>/*.JPEG and <data-dir>/imagenet/val/<wnid>/*.JPEG "
          "(optional <data-dir>/imagenet/test/<wnid>/*.JPEG; val sorted into class folders)")
ARCHS = ("resnet50", "vit")


class ImageNetState(VisionState):
    """config, seed, model, optimizer, fidelity (units trained)."""


class _Images(torch.utils.data.Dataset):
    """(path, label) pairs decoded to uint8 CHW tensors of one fixed size."""

    def __init__(self, samples: list[tuple[str, int]], image_size: int):
        from torchvision import transforms

        self.samples = samples
        self.transform = transforms.Compose([
            transforms.Resize(max(image_size, round(image_size * 8 / 7))),
            transforms.CenterCrop(image_size),
            transforms.PILToTensor(),
        ])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.datasets.folder import default_loader

        path, label = self.samples[i]
        return self.transform(default_loader(path)), label


def write_imagenet_folders(root: Path, classes: int = 3, per_class: dict[str, int] | None = None,
                           size: int = 40, seed: int = 0) -> None:
    """A tiny random ILSVRC-layout dataset of JPEGs under ``root/imagenet`` (tests, conformance)."""
    from PIL import Image

    per_class = per_class or {"train": 8, "val": 4}
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for c in range(classes):
            folder = root / "imagenet" / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = int(rng.integers(size, size + 16)), int(rng.integers(size, size + 16))
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"n{c:08d}_{split}_{i}.JPEG", quality=90)


class ImageNetTask(VisionTask):
    """ImageNet, torchvision ResNet-50 (SGD) or a small ViT (AdamW); fidelity = epochs or epoch fractions.

    tau: top-1 val_error 0.40 (ResNet-50) / 0.50 (ViT-S): ResNet-50 reaches ~76% after a full
    schedule and well above 60% within a 27-epoch cosine run; a ViT-S without strong
    augmentation trains slower. ``arch="resnet50"`` takes ``resnet_layers`` (default (3, 4, 6, 3));
    ``arch="vit"`` takes ``vit`` = dict(patch_size, num_layers, num_heads, hidden_dim, mlp_dim),
    default ViT-S/16 (12 layers, 6 heads, 384 wide).

    Training loop, evaluation, save/load and the warm-start problem's assembly come from
    :class:`~ohgw_bench.tasks.vision_common.VisionTask`; this class supplies the data, the
    models, bfloat16 autocast and channels-last on a GPU.
    """

    id = "imagenet-resnet50-v1"
    description = "ImageNet ILSVRC train/val folders, torchvision ResNet-50 or ViT (random init)"
    metric = "val_error"
    mode = "min"
    test_metric = "test_error"
    tau = 0.40
    hypergrad_method = "autograd"
    default_horizon = 1
    default_budget = 48 * 3600.0
    # One A100 with bfloat16 autocast trains ResNet-50 at roughly 2,600 images/s x 24.6 GFLOP
    # per image (forward + backward at 224 px) = about 6.4e13 FLOP/s; ViT-S/16 is in the same range.
    reference_flops_per_second = 6e13
    conformance_fidelities = (1, 2)

    option_declarations = (LABEL_NOISE,)

    def __init__(self, data_dir: Any = None, arch: str = "resnet50", image_size: int = 224,
                 batch_size: int = 256, max_epochs: int = 27, units_per_epoch: int = 1,
                 split_seed: int = 0, train_size: int | None = None, eval_size: int = 10000,
                 num_workers: int | None = None, nesterov: bool = True,
                 resnet_layers: tuple[int, ...] | list[int] = (3, 4, 6, 3),
                 vit: Mapping[str, int] | None = None, device: str | None = None, label_noise: float = 0.0):
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
        vit_cfg = {"patch_size": 16, "num_layers": 12, "num_heads": 6, "hidden_dim": 384, "mlp_dim": 1536}
        vit_cfg.update(vit or {})
        super().__init__(data_dir, arch=arch, image_size=image_size, batch_size=batch_size,
                         max_epochs=max_epochs, units_per_epoch=units_per_epoch, split_seed=split_seed,
                         train_size=train_size, eval_size=eval_size, num_workers=num_workers,
                         nesterov=nesterov, resnet_layers=list(resnet_layers), vit=vit_cfg,
                         device=device, label_noise=label_noise)
        self.label_noise = float(label_noise)
        self.arch = arch
        self.image_size = image_size
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.units_per_epoch = units_per_epoch
        self.split_seed = split_seed
        self.train_size = train_size
        self.eval_size = eval_size
        self.nesterov = nesterov
        self.resnet_layers = list(resnet_layers)
        self.vit_cfg = vit_cfg
        self.device = torch.device(device) if device else default_device()
        self.cuda = self.device.type == "cuda"
        self.num_workers = (8 if self.cuda else 0) if num_workers is None else num_workers
        self.pad = max(1, image_size // 8)
        if arch == "vit":
            self.tau = 0.50
            self.default_horizon = 2
        self._splits: dict[str, _Images] | None = None
        self._classes = 0
        self._unit_flops: float | None = None
        self._mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1) * 255

    @property
    def space(self) -> SearchSpace:
        if self.arch == "vit":
            return SearchSpace([
                Hyperparameter("lr", 1e-5, 1e-2, 1e-3, log=True, prior=1.0),
                Hyperparameter("weight_decay", 1e-4, 0.3, 0.05, log=True),
                Hyperparameter("momentum", 0.8, 0.99, 0.9),
                Hyperparameter("aug_magnitude", 0.0, 1.0, 0.2),
                Hyperparameter("label_smoothing", 0.0, 0.3, 0.1),
            ])
        return SearchSpace([
            Hyperparameter("lr", 1e-3, 1.0, 0.1, log=True, prior=1.0),
            Hyperparameter("weight_decay", 1e-6, 1e-2, 1e-4, log=True),
            Hyperparameter("momentum", 0.0, 0.99, 0.9),
            Hyperparameter("aug_magnitude", 0.0, 1.0, 0.2),
            Hyperparameter("label_smoothing", 0.0, 0.3, 0.0),
        ])

    @property
    def fidelity(self) -> Fidelity:
        k = self.units_per_epoch
        if k == 1:
            return Fidelity("epochs", 1, self.max_epochs, "epochs")
        return Fidelity("epoch_parts", 1, self.max_epochs * k, f"1/{k} epoch")

    @classmethod
    def conformance_setup(cls, tmp_dir: Path) -> dict[str, Any]:
        write_imagenet_folders(Path(tmp_dir), classes=3, per_class={"train": 4, "val": 4})
        return {"data_dir": Path(tmp_dir), "image_size": 32, "batch_size": 6, "resnet_layers": (1, 1, 1, 1),
                "vit": {"patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "mlp_dim": 64}}

    # data

    def prepare(self) -> None:
        if self._splits is not None:
            return
        from torchvision.datasets import ImageFolder

        root = self.data_dir / "imagenet"
        if not (root / "train").is_dir() or not (root / "val").is_dir():
            raise self.data_missing("the ImageNet train/val folders", LAYOUT)
        try:
            train = ImageFolder(str(root / "train"))
            val = ImageFolder(str(root / "val"))
            test = ImageFolder(str(root / "test")) if (root / "test").is_dir() else None
        except (FileNotFoundError, RuntimeError) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise self.data_missing(f"images in the ImageNet folders ({reason})", LAYOUT) from None

        def remap(ds: Any) -> list[tuple[str, int]]:
            unknown = sorted(set(ds.classes) - set(train.class_to_idx))
            if unknown:
                raise self.data_missing(f"train folders for classes {unknown[:3]} seen in {ds.root}", LAYOUT)
            return [(p, train.class_to_idx[ds.classes[t]]) for p, t in ds.samples]

        rng = np.random.default_rng(self.split_seed)
        train_samples = [train.samples[i] for i in rng.permutation(len(train.samples))]
        if self.train_size is not None:
            train_samples = train_samples[: self.train_size]
        noisy = noisy_labels([t for _, t in train_samples], len(train.classes), self.label_noise, self.split_seed)
        train_samples = [(p, int(t)) for (p, _), t in zip(train_samples, noisy, strict=True)]
        val_samples = [remap(val)[i] for i in rng.permutation(len(val.samples))]
        if test is not None:
            test_samples = remap(test)
        else:
            half = len(val_samples) // 2
            val_samples, test_samples = val_samples[:half], val_samples[half:]
        if len(train_samples) < 2 or not val_samples or not test_samples:
            raise self.data_missing("enough images (at least 2 train and 2 val)", LAYOUT)
        self._classes = len(train.classes)
        self._splits = {"train": _Images(train_samples, self.image_size),
                        "val": _Images(val_samples[: self.eval_size], self.image_size),
                        "test": _Images(test_samples[: self.eval_size], self.image_size)}
        if self.batches_per_epoch < self.units_per_epoch:
            raise self.data_missing(f"at least {self.units_per_epoch} batches of {self.batch_size} "
                                    f"train images (units_per_epoch={self.units_per_epoch})", LAYOUT)

    @property
    def splits(self) -> dict[str, _Images]:
        self.prepare()
        assert self._splits is not None
        return self._splits

    @property
    def num_classes(self) -> int:
        self.prepare()
        return self._classes

    @property
    def _bs(self) -> int:
        return min(self.batch_size, len(self.splits["train"]))

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.splits["train"]) // self._bs)

    def _unit_range(self, unit: int) -> tuple[int, int, int]:
        """(epoch, first batch, end batch) of fidelity unit ``unit`` (0-based)."""
        epoch, part = divmod(unit, self.units_per_epoch)
        nb, k = self.batches_per_epoch, self.units_per_epoch
        return epoch, part * nb // k, (part + 1) * nb // k

    def _loader(self, dataset: torch.utils.data.Dataset, batch_size: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                           num_workers=self.num_workers, pin_memory=self.cuda,
                                           persistent_workers=False)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float()
        return (x - self._mean) / self._std

    def _unit_batches(self, seed: int, unit: int) -> Iterator[Batch]:
        """The prepared training batches (x cropped/flipped, y, contrast, colour, noise) of one unit."""
        epoch, lo, hi = self._unit_range(unit)
        g = torch.Generator().manual_seed(batch_seed(seed, epoch, 0, stream=1))
        order = torch.randperm(len(self.splits["train"]), generator=g)
        bs = self._bs
        subset = torch.utils.data.Subset(self.splits["train"], order[lo * bs:hi * bs].tolist())
        for j, (x, y) in enumerate(self._loader(subset, bs)):
            x = self._normalise(x)
            offsets, flips, draws = draw_augmentation(len(x), 3, self.image_size, self.pad,
                                                      batch_seed(seed, epoch, lo + j), self.device)
            yield (crop_flip(x, offsets, flips, self.pad), y.to(self.device), *draws)

    def _eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self._loader(self.splits[split], max(self._bs, 64)):
            yield self._normalise(x), y.to(self.device)

    # models and training

    def _model(self, seed: int, dev: torch.device | None = None) -> nn.Module:
        """torchvision's model with weights=None, initialised under the trial's seed (global RNG restored)."""
        from torchvision import models

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.arch == "resnet50":
                model: nn.Module = models.ResNet(models.resnet.Bottleneck, self.resnet_layers,
                                                 num_classes=self.num_classes)
            else:
                model = models.VisionTransformer(image_size=self.image_size, num_classes=self.num_classes,
                                                 **self.vit_cfg)
        return model.to(dev or self.device)

    def _autocast(self) -> Any:
        if self.cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _channels_last(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x

    def _forward(self, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: model(self._channels_last(x))

    def init_state(self, config: Mapping[str, Any], seed: int) -> ImageNetState:
        config = dict(config)
        model = self._model(seed)
        if self.cuda:
            model = model.to(memory_format=torch.channels_last)
        opt: torch.optim.Optimizer
        if self.arch == "vit":
            opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], betas=(float(config["momentum"]), 0.999),
                                    weight_decay=config["weight_decay"])
        else:
            opt = sgd_optimizer(model, config, self.nesterov)
        return ImageNetState(config, seed, model, opt)

    # the training loop, evaluation and save/load are VisionTask's

    # cost

    def unit_flops(self) -> float:
        """FLOPs of one fidelity unit of training plus one evaluation of val and test.

        Counted once per model on a 2-image batch on the CPU and halved (FLOPs are linear in
        the batch; BatchNorm needs two images in train mode).
        """
        if self._unit_flops is None:
            step, infer = image_flops(self._model(0, torch.device("cpu")), self.image_size,
                                      self.space.default_config())
            _, lo, hi = self._unit_range(0)
            n_eval = len(self.splits["val"]) + len(self.splits["test"])
            self._unit_flops = step * self._bs * (hi - lo) + infer * n_eval
        return self._unit_flops

    def cost(self, config: Mapping[str, Any], start: int, stop: int) -> float:
        return units_cost(start, stop, self.unit_flops(), self.reference_flops_per_second)

    # warm-start

    def hyper_problem(self, config: Mapping[str, Any], seed: int, horizon: int,
                      split_batch: bool = False) -> HyperProblem:
        """The trial's own w0 and first ``horizon`` batches (float32); V = a fixed val batch.

        With ``split_batch`` the first batch is halved; V is its second half without augmentation.
        """
        batches: list[Batch] = []
        unit = 0
        while len(batches) < max(1, horizon):
            for batch in self._unit_batches(seed, unit):
                batches.append(batch)
                if len(batches) == max(1, horizon):
                    break
            unit += 1
        if split_batch:
            train, half = halve_first_batch(batches)
            g = torch.Generator().manual_seed(batch_seed(seed, 0, 0, stream=1))
            order = torch.randperm(len(self.splits["train"]), generator=g)[:self._bs]
            x, y = next(iter(self._loader(torch.utils.data.Subset(self.splits["train"],
                                                                  order[half:].tolist()), self._bs)))
            val: Batch = (self._normalise(x), y.to(self.device))
        else:
            train = batches
            x, y = next(iter(self._loader(self.splits["val"], VAL_BATCH)))
            val = (self._normalise(x), y.to(self.device))
        if self.arch == "vit":
            opt: SGD | AdamW = AdamW(lr="lr", beta1="momentum", weight_decay="weight_decay")
        else:
            opt = SGD(lr="lr", momentum="momentum", weight_decay="weight_decay", nesterov=self.nesterov)
        if self.arch == "vit":
            return self._problem(config, seed, train, val, opt,
                                 math_attention(augmented_loss), math_attention(plain_loss))
        return self._problem(config, seed, train, val, opt)
