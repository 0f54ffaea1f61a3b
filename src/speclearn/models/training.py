"""The one training loop for every torch model: mini-batches, early stopping, progress, seeds."""
from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from rich.progress import TextColumn

from speclearn import progress as progress_bars


@dataclass
class TrainingConfig:
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9
    patience: int = 20
    clip_norm: float | None = None  # clip the gradient norm (stabilises SGD at high learning rates)
    max_seconds: float | None = None
    seed: int = 0
    progress: bool = True

    @classmethod
    def of(cls, estimator: Any, **settings) -> "TrainingConfig":
        """The settings an estimator holds as hyperparameters of the same names (`get_params`), `settings`
        on top."""
        params = estimator.get_params(deep=False)
        return cls(**{**{f.name: params[f.name] for f in fields(cls) if f.name in params}, **settings})


@dataclass
class TrainingHistory:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    stopped: str = "epochs"
    device: str = "cpu"  # where the network was trained

    def as_dict(self) -> dict:
        return {"train_loss": self.train_loss, "val_loss": self.val_loss, "best_epoch": self.best_epoch,
                "seconds": self.seconds, "stopped": self.stopped, "device": self.device}


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _world() -> tuple[int, int]:
    """(rank, number of processes) of an initialised torch.distributed group; (0, 1) without one."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(params: Sequence[torch.nn.Parameter], world: int) -> None:
    """Data-parallel step: every process's gradient replaced by the mean over the processes (DDP's all-reduce)."""
    import torch.distributed as dist
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def _all_sum(value: float) -> float:
    import torch.distributed as dist
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor)


def train(module: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Sequence[torch.Tensor]], torch.Tensor],
          train_data: Sequence[torch.Tensor], val_data: Sequence[torch.Tensor] | None,
          config: TrainingConfig, *, device: torch.device | str = "cpu",
          description: str = "training") -> TrainingHistory:
    """Minimise `loss_fn(module, batch)` over mini-batches of the aligned tensors in `train_data`.

    Early stopping watches the validation loss (training loss when `val_data` is None) and
    restores the best weights. Tensors stay on the CPU; each batch moves to `device`.

    Inside a torch.distributed process group (`speclearn.distributed.data_parallel`), every process
    takes its share of each mini-batch and the gradients are averaged over the processes before each
    step (data-parallel training: the same updates as one process with the whole batch).
    """
    rng = seed_everything(config.seed)
    device = torch.device(device)
    module.to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    rank, world = _world()
    if world > 1:
        import torch.distributed as dist
        for p in module.state_dict().values():
            dist.broadcast(p, 0)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    n = len(train_data[0])
    history = TrainingHistory(device=str(device))
    best, best_state, waited = math.inf, None, 0
    start = time.perf_counter()
    with progress_bars.bar(description, enabled=config.progress and rank == 0, unit="epochs",
                           extra=(TextColumn("{task.fields[loss]}"),)) as progress:
        task = progress.add_task(description, total=config.epochs, loss="")
        for epoch in range(config.epochs):
            module.train()
            order = torch.from_numpy(rng.permutation(n))
            total = 0.0
            for start_i in range(0, n, config.batch_size):
                index = order[start_i:start_i + config.batch_size]
                if len(index) < 2 and n >= 2:
                    continue  # batch norm cannot train on a single example
                index = index[rank::world]
                batch = [t[index].to(device, non_blocking=True) for t in train_data]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(module, batch)
                loss.backward()
                if world > 1:
                    _average_gradients(params, world)
                if config.clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.clip_norm)
                optimizer.step()
                total += float(loss.detach()) * len(index)
            if world > 1:
                total = _all_sum(total)
            history.train_loss.append(total / n)
            monitored = evaluate(module, loss_fn, val_data, config.batch_size, device) if val_data is not None \
                else history.train_loss[-1]
            if val_data is not None:
                history.val_loss.append(monitored)
            if monitored < best - 1e-12:
                best, best_state, waited, history.best_epoch = monitored, copy.deepcopy(module.state_dict()), 0, epoch
            else:
                waited += 1
            progress.update(task, advance=1, loss=f"loss {monitored:.4g}")
            if waited >= config.patience:
                history.stopped = "early stopping"
                break
            late = config.max_seconds is not None and time.perf_counter() - start > config.max_seconds
            if world > 1:
                late = _all_sum(float(late)) > 0  # every process stops at the same epoch
            if late:
                history.stopped = "time limit"
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def evaluate(module: torch.nn.Module, loss_fn, data: Sequence[torch.Tensor], batch_size: int,
             device: torch.device) -> float:
    """Mean of `loss_fn` over `data` in eval mode."""
    module.eval()
    n, total = len(data[0]), 0.0
    for start in range(0, n, batch_size):
        batch = [t[start:start + batch_size].to(device) for t in data]
        total += float(loss_fn(module, batch)) * len(batch[0])
    return total / max(n, 1)


@torch.no_grad()
def predict_batches(fn: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray, *, batch_size: int = 256,
                    device: torch.device | str = "cpu", modules: Sequence[torch.nn.Module] = ()) -> np.ndarray:
    """Apply `fn` to `X` in batches on `device`; returns a float numpy array.

    modules: the networks `fn` uses; they move to `device` for the call and back to the CPU after.
    """
    device = torch.device(device)
    cpu = torch.device("cpu")
    # only networks elsewhere move (.to() walks every tensor: a fifth of a small network's call)
    for module in modules:
        if not _on(module, device):
            module.to(device)
    try:
        outputs = []
        for start in range(0, len(X), batch_size):
            batch = torch.as_tensor(np.asarray(X[start:start + batch_size], dtype=np.float32), device=device)
            outputs.append(fn(batch).float().cpu().numpy())
    finally:
        for module in modules:
            if not _on(module, cpu):
                module.cpu()
    return np.concatenate(outputs) if outputs else np.empty((0,))


def _on(module: torch.nn.Module, device: torch.device) -> bool:
    """Whether `module` is on `device`, judged by its first weight or buffer (`.to()` moves them all;
    walking every tensor cost 0.1 ms a call)."""
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return first is None or first.device == device


def module_arrays(module: torch.nn.Module, prefix: str = "net.") -> dict[str, np.ndarray]:
    """A module's state (weights and buffers) as numpy arrays for `SavedModel.arrays`."""
    return {prefix + k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_module_arrays(module: torch.nn.Module, arrays: dict[str, np.ndarray], prefix: str = "net.") -> torch.nn.Module:
    """Load the state written by `module_arrays` into `module` (strict: names and shapes must match)."""
    from speclearn.core.errors import InputError
    state = {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        problem = " ".join(str(err).split())[:120]
        raise InputError(f"the model's weights do not fit the network its config describes ({problem})") from None
    module.eval()
    return module
