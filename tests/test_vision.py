"""Vision tasks (CIFAR-10/100 ResNet-20, ImageNet ResNet-50/ViT) on tiny datasets in the real on-disk formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

from ohgw_bench import hypergrad, tasks
from ohgw_bench.errors import DataMissingError
from ohgw_bench.tasks.cifar import CifarTask, make_resnet20, read_cifar_batches, write_cifar_batches
from ohgw_bench.tasks.imagenet import ImageNetTask
from ohgw_bench.tasks.vision_common import crop_flip, photometric

VISION_IDS = {
    "cifar10-resnet20-v1": CifarTask,
    "cifar100-resnet20-v1": CifarTask,
    "imagenet-resnet50-v1": ImageNetTask,
    "imagenet-vit-v1": ImageNetTask,
}


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores shared with other test processes: one thread is faster and steadier."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_resnet20_has_the_published_size():
    n10 = sum(p.numel() for p in make_resnet20(10, 0).parameters())
    n100 = sum(p.numel() for p in make_resnet20(100, 0).parameters())
    assert n10 == 269_722  # option-A shortcuts carry no parameters
    assert abs(n10 - 0.27e6) / 0.27e6 < 0.01
    assert n100 - n10 == 90 * 64 + 90
    convs = [m for m in make_resnet20(10, 0).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 19  # + the classifier = 20 weighted layers


def test_resnet20_flops_per_image(tmp_path):
    task = tasks.make("cifar10", **CifarTask.conformance_setup(tmp_path))
    step, infer = task.flops_per_image()
    assert 78e6 < infer < 86e6  # 40.8M multiply-adds (He et al. report ~41M)
    assert 2.8 < step / infer < 3.2  # backward = 2x forward


def test_cifar_pickle_reader_and_splits(tmp_path):
    write_cifar_batches(tmp_path, 10, n_train=50, n_test=7, seed=1)
    folder = tmp_path / "cifar-10-batches-py"
    with open(folder / "data_batch_3", "rb") as f:
        blob = pickle.load(f, encoding="bytes")
    assert blob[b"data"].dtype.name == "uint8" and blob[b"data"].shape == (10, 3072)
    x, y = read_cifar_batches(folder, [f"data_batch_{i}" for i in range(1, 6)], b"labels")
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (50,)
    first = torch.from_numpy(pickle.load(open(folder / "data_batch_1", "rb"), encoding="bytes")[b"data"][0])
    assert torch.equal(x[0, 0].flatten(), first[:1024])  # channel-major rows, as the archive stores them
    task = tasks.make("cifar10", data_dir=tmp_path, train_size=20, batch_size=8)
    sizes = {k: len(v[0]) for k, v in task.data.items()}
    assert sizes == {"train": 20, "val": 10, "test": 7}
    other = tasks.make("cifar10", data_dir=tmp_path, split_seed=1)
    assert not torch.equal(other.data["val"][0], task.data["val"][0])

    write_cifar_batches(tmp_path, 100, n_train=30, n_test=5)
    t100 = tasks.make("cifar100", data_dir=tmp_path)
    assert t100.num_classes == 100 and t100.tau > task.tau
    assert int(t100.data["train"][1].max()) < 100 and len(t100.data["test"][0]) == 5


def test_missing_data_is_one_line(tmp_path):
    for name, needle in (("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
                         ("imagenet", "imagenet/train/<wnid>"), ("imagenet-vit", "imagenet/val/<wnid>")):
        with pytest.raises(DataMissingError) as err:
            tasks.make(name, data_dir=tmp_path).prepare()
        msg = str(err.value)
        assert needle in msg and "\n" not in msg and str(tmp_path) in msg
        assert err.value.exit_code == 2


def test_crop_flip_and_photometric():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    pad = 2
    centre = torch.full((2, 2), pad)
    assert torch.equal(crop_flip(x, centre, torch.tensor([False, False]), pad), x)
    flipped = crop_flip(x, centre, torch.tensor([True, False]), pad)
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    shifted = crop_flip(x, torch.tensor([[pad + 1, pad], [0, pad]]), torch.tensor([False, False]), pad)
    assert torch.equal(shifted[0, :, :3], x[0, :, 1:]) and shifted[0, :, 3].abs().sum() == 0
    assert torch.equal(shifted[1, :, pad:], x[1, :, :2]) and shifted[1, :, :pad].abs().sum() == 0

    g = torch.Generator().manual_seed(0)
    draws = (torch.randn(2, 1, 1, 1, generator=g), torch.randn(2, 3, 1, 1, generator=g),
             torch.randn(2, 3, 4, 4, generator=g))
    assert torch.equal(photometric(x, draws, 0.0), x)
    m = torch.tensor(0.3, requires_grad=True)
    (dm,) = torch.autograd.grad(photometric(x, draws, m).sum(), m)
    assert torch.allclose(dm, (x * draws[0] + draws[1] + draws[2]).sum())


def test_batches_are_reproducible_and_seed_dependent(tmp_path):
    task = tasks.make("cifar10", **CifarTask.conformance_setup(tmp_path))
    a = task._batch(task._epoch_order(5, 2), 5, 2, 1)
    b = task._batch(task._epoch_order(5, 2), 5, 2, 1)
    c = task._batch(task._epoch_order(6, 2), 6, 2, 1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])


def _one_step_hypergradient(problem, nesterov: bool) -> dict[str, float]:
    """dJ/d(hyper) through one SGD step, written out for this test only (the engine is elsewhere)."""
    model = problem.model
    params = {k: v.detach().requires_grad_() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    hp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in problem.hyper.items()}

    def forward_with(weights):
        return lambda x: functional_call(model, (weights, buffers), (x,))

    loss = problem.train_loss(forward_with(params), problem.train_batches[0], hp)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    new = {}
    for (k, w), g in zip(params.items(), grads):
        d = g + hp["weight_decay"] * w
        update = d + hp["momentum"] * d if nesterov else d
        new[k] = w - hp["lr"] * update
    value = problem.val_loss(forward_with(new), problem.val_batch)
    return dict(zip(hp, (float(g) for g in torch.autograd.grad(value, list(hp.values())))))


def test_cifar_hyper_problem_carries_a_gradient_for_all_five(tmp_path):
    task = tasks.make("cifar10", **CifarTask.conformance_setup(tmp_path))
    config = task.space.default_config() | {"label_smoothing": 0.1}
    problem = task.hyper_problem(config, seed=3, horizon=1)
    state = task.init_state(config, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(problem.model.parameters(), state.model.parameters()))
    first = task._batch(task._epoch_order(3, 0), 3, 0, 0)
    assert all(torch.equal(u, v) for u, v in zip(problem.train_batches[0], first))
    assert problem.optimizer.nesterov and problem.optimizer.momentum == "momentum"

    problem.model.double()
    problem.train_batches = [tuple(t.double() if t.is_floating_point() else t for t in problem.train_batches[0])]
    problem.val_batch = (problem.val_batch[0].double(), problem.val_batch[1])
    grad = _one_step_hypergradient(problem, nesterov=True)
    assert set(grad) == {"lr", "weight_decay", "momentum", "aug_magnitude", "label_smoothing"}
    assert all(g != 0.0 and abs(g) < 1e6 for g in grad.values()), grad
    # ReLU kinks make J piecewise smooth in the input-side magnitude: keep the float64 steps tiny
    for name, h in (("aug_magnitude", 1e-6), ("lr", 1e-6), ("label_smoothing", 1e-6)):
        values = []
        for sign in (1, -1):
            problem.hyper = dict(problem.hyper) | {name: config[name] + sign * h}
            values.append(_one_step_value(problem))
        problem.hyper = {n: float(config[n]) for n in problem.hyper}
        fd = (values[0] - values[1]) / (2 * h)
        assert fd == pytest.approx(grad[name], rel=1e-3), name


def _one_step_value(problem) -> float:
    model = problem.model
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    hp = {k: torch.tensor(v, dtype=torch.float64) for k, v in problem.hyper.items()}
    params = {k: v.requires_grad_() for k, v in params.items()}
    loss = problem.train_loss(lambda x: functional_call(model, (params, buffers), (x,)),
                              problem.train_batches[0], hp)
    grads = torch.autograd.grad(loss, list(params.values()))
    new = {k: (w - hp["lr"] * (1 + hp["momentum"]) * (g + hp["weight_decay"] * w)).detach()
           for (k, w), g in zip(params.items(), grads)}
    with torch.no_grad():
        return float(problem.val_loss(lambda x: functional_call(model, (new, buffers), (x,)), problem.val_batch))


def test_split_batch_carves_validation_from_the_first_batch(tmp_path):
    task = tasks.make("cifar10", **CifarTask.conformance_setup(tmp_path))
    problem = task.hyper_problem(task.space.default_config(), seed=0, horizon=1, split_batch=True)
    (train,) = problem.train_batches
    assert len(train[0]) == len(problem.val_batch[0]) == task.batch_size // 2
    first = task._batch(task._epoch_order(0, 0), 0, 0, 0)
    assert torch.equal(problem.val_batch[1], first[1][task.batch_size // 2:])


def test_imagenet_layout_splits_and_vit_lookahead(tmp_path):
    kwargs = ImageNetTask.conformance_setup(tmp_path)
    task = tasks.make("imagenet-vit", **kwargs)
    assert task.num_classes == 3 and {k: len(v) for k, v in task.splits.items()} == {"train": 12, "val": 6, "test": 6}
    assert task.default_horizon == 2 and isinstance(task.hyper_problem(task.space.default_config(), 0, 2).optimizer,
                                                    hypergrad.AdamW)
    x, y = task.splits["train"][0]
    assert x.dtype == torch.uint8 and x.shape == (3, 32, 32)

    from ohgw_bench.tasks.imagenet import write_imagenet_folders

    write_imagenet_folders(tmp_path, classes=3, per_class={"test": 2}, seed=5)
    with_test = tasks.make("imagenet", **kwargs)
    assert {k: len(v) for k, v in with_test.splits.items()} == {"train": 12, "val": 12, "test": 6}

    parts = tasks.make("imagenet", **kwargs | {"units_per_epoch": 2, "batch_size": 3, "max_epochs": 5})
    assert (parts.fidelity.name, parts.fidelity.max) == ("epoch_parts", 10)
    assert [parts._unit_range(u) for u in range(3)] == [(0, 0, 2), (0, 2, 4), (1, 0, 2)]
    assert parts.cost(parts.space.default_config(), 0, 2) == pytest.approx(
        2 * parts.cost(parts.space.default_config(), 0, 1))


def test_vit_hyper_problem_has_a_double_backward(tmp_path):
    """The fused attention kernels have no double backward; the problem's losses must avoid them."""
    task = tasks.make("imagenet-vit", **ImageNetTask.conformance_setup(tmp_path))
    problem = task.hyper_problem(task.space.default_config(), seed=0, horizon=1)
    params = dict(problem.model.named_parameters())
    hp = {k: torch.tensor(v, requires_grad=True) for k, v in problem.hyper.items()}
    loss = problem.train_loss(lambda x: functional_call(problem.model, params, (x,)), problem.train_batches[0], hp)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    mixed = torch.autograd.grad(sum(g.square().sum() for g in grads), [hp["aug_magnitude"], hp["label_smoothing"]])
    assert all(torch.isfinite(m) and m != 0 for m in mixed)


def test_a_missing_class_folder_in_val_is_reported(tmp_path):
    from ohgw_bench.tasks.imagenet import write_imagenet_folders

    write_imagenet_folders(tmp_path, classes=2, per_class={"train": 2})
    write_imagenet_folders(tmp_path / "x", classes=3, per_class={"val": 2})
    (tmp_path / "imagenet" / "val").mkdir()
    for p in (tmp_path / "x" / "imagenet" / "val").iterdir():
        p.rename(tmp_path / "imagenet" / "val" / p.name)
    with pytest.raises(DataMissingError, match="n00000002"):
        tasks.make("imagenet", data_dir=Path(tmp_path), image_size=32).prepare()
