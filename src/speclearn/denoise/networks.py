"""1-D convolutional networks for denoising: a DnCNN-style stack and a small U-Net.

`DnCNN1d` is the channel of SpectroscopyNet (Castorena & Oyen, after Zhang et al. 2017): a first
Conv+ReLU, `depth - 2` Conv+BatchNorm+ReLU blocks and a last Conv, `depth` conv layers in all.
Cheaper variants: fewer/narrower layers, dilated kernels (a wide receptive field at the same
cost) and `downsample` (a strided first conv and a transposed last conv, so the inner blocks
run on 1/`downsample` of the channels).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
    extra = (-x.shape[-1]) % multiple
    return (F.pad(x, (0, extra), mode="replicate") if extra else x), extra


class DnCNN1d(nn.Module):
    """(batch, channels) -> (batch, channels): a stack of `depth` 1-D conv layers of `width` filters."""

    def __init__(self, depth: int = 18, width: int = 64, kernel_size: int = 3, dilation: int | list[int] = 1,
                 downsample: int = 1):
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be at least 2")
        dilations = list(dilation) if isinstance(dilation, (list, tuple)) else [int(dilation)]
        self.downsample = int(downsample)
        stride = self.downsample
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        first = nn.Conv1d(1, width, kernel_size, stride=stride, padding=kernel_size // 2)
        layers: list[nn.Module] = [first, nn.ReLU(inplace=True)]
        for i in range(depth - 2):
            d = dilations[i % len(dilations)]
            layers += [nn.Conv1d(width, width, kernel_size, padding=d * (kernel_size // 2), dilation=d, bias=False),
                       nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = (nn.ConvTranspose1d(width, 1, kernel_size=stride, stride=stride) if stride > 1
                     else nn.Conv1d(width, 1, kernel_size, padding=kernel_size // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        x, _ = _pad_to_multiple(x.unsqueeze(1), self.downsample)
        return self.head(self.body(x))[:, 0, :n]


class UNet1d(nn.Module):
    """A small 1-D U-Net (encoder-decoder with skip connections) predicting the residual y - clean;
    (batch, channels) -> (batch, channels), or (batch, outputs, channels) with `outputs` > 1."""

    def __init__(self, width: int = 16, levels: int = 3, kernel_size: int = 5, outputs: int = 1):
        super().__init__()
        self.levels = levels
        pad = kernel_size // 2

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(c_in, c_out, kernel_size, padding=pad), nn.BatchNorm1d(c_out),
                                 nn.ReLU(inplace=True),
                                 nn.Conv1d(c_out, c_out, kernel_size, padding=pad), nn.BatchNorm1d(c_out),
                                 nn.ReLU(inplace=True))

        widths = [width * 2 ** i for i in range(levels + 1)]
        self.down = nn.ModuleList([block(1 if i == 0 else widths[i - 1], widths[i]) for i in range(levels)])
        self.bottom = block(widths[levels - 1], widths[levels])
        self.up = nn.ModuleList([nn.ConvTranspose1d(widths[i + 1], widths[i], 2, stride=2) for i in range(levels)])
        self.merge = nn.ModuleList([block(2 * widths[i], widths[i]) for i in range(levels)])
        self.out = nn.Conv1d(widths[0], outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        h, _ = _pad_to_multiple(x.unsqueeze(1), 2 ** self.levels)
        skips = []
        for down in self.down:
            h = down(h)
            skips.append(h)
            h = F.max_pool1d(h, 2)
        h = self.bottom(h)
        for i in reversed(range(self.levels)):
            h = self.merge[i](torch.cat([self.up[i](h), skips[i]], dim=1))
        out = self.out(h)[..., :n]
        return out[:, 0] if out.shape[1] == 1 else out


def conv_flops_per_spectrum(module: nn.Module, n_channels: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass on one spectrum, counted with hooks."""
    total = 0.0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Conv1d):
            macs = output.numel() * layer.in_channels // layer.groups * layer.kernel_size[0]
        else:  # ConvTranspose1d
            macs = inputs[0].numel() * layer.out_channels * layer.kernel_size[0]
        total += 2.0 * macs

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    was_training = module.training
    module.eval()
    with torch.no_grad():
        module(torch.zeros(1, n_channels))
    module.train(was_training)
    for h in handles:
        h.remove()
    return total
