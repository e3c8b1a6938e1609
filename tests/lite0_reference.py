"""An independent PyTorch EfficientNet-Lite0, built from the published facts, to check the port."""
import math

import torch
from torch import nn
from torch.nn import functional as F

STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


class SameConv(nn.Conv2d):
    """TensorFlow "SAME" padding: the odd pixel of padding goes to the bottom/right."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-3)


class Block(nn.Module):
    def __init__(self, kernel, stride, expansion, cin, cout):
        super().__init__()
        mid = cin * expansion
        if expansion != 1:
            self._expand_conv, self._bn0 = SameConv(cin, mid, 1, bias=False), bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv, self._bn2 = SameConv(mid, cout, 1, bias=False), bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), bn(32)
        blocks = []
        for repeats, kernel, stride, expansion, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(Block(kernel, stride if r == 0 else 1, expansion, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = SameConv(320, 1280, 1, bias=False), bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):              # (B, 3, 224, 224) scaled as (x - 127) / 128
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))
