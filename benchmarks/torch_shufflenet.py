"""The same ShuffleNet v1 in PyTorch, for side-by-side timing and as a test oracle (never imported by the package).

Parameter names follow ``numpy_shufflenet``'s, so ``load_numpy_state(model, state_dict)`` copies weights across.
"""

from collections import OrderedDict

import torch
from torch import nn
import torch.nn.functional as F


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Shuffle(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return channel_shuffle(x, self.groups)


class Unit(nn.Module):
    def __init__(self, cin, cout, groups, stride, grouped_first=True, shuffle=True):
        super().__init__()
        mid = cout // 4
        out = cout - cin if stride == 2 else cout
        layers = [("conv1", nn.Conv2d(cin, mid, 1, groups=groups if grouped_first else 1, bias=False)),
                  ("bn1", nn.BatchNorm2d(mid)), ("relu1", nn.ReLU())]
        if shuffle and groups > 1:
            layers.append(("shuffle", Shuffle(groups)))
        layers += [("conv2", nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)), ("bn2", nn.BatchNorm2d(mid)),
                   ("conv3", nn.Conv2d(mid, out, 1, groups=groups, bias=False)), ("bn3", nn.BatchNorm2d(out))]
        self.branch = nn.Sequential(OrderedDict(layers))
        self.stride = stride

    def forward(self, x):
        y = self.branch(x)
        if self.stride == 1:
            return F.relu(x + y)
        return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))


class TorchShuffleNet(nn.Module):
    def __init__(self, widths, groups, num_classes=1000, shuffle=True):
        super().__init__()
        stem, *stages = widths
        self.stem = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, stem, 3, 2, 1, bias=False), bn=nn.BatchNorm2d(stem),
                                       relu=nn.ReLU()))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for s, (cout, reps) in enumerate(zip(stages, (4, 8, 4)), start=2):
            units = []
            for i in range(reps):
                units.append(Unit(cin, cout, groups, 2 if i == 0 else 1, not (s == 2 and i == 0), shuffle))
                cin = cout
            setattr(self, f"stage{s}", nn.Sequential(*units))
        self.fc = nn.Linear(cin, num_classes, bias=False)

    def forward(self, x):
        x = self.maxpool(self.stem(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(x.mean((2, 3)))


def load_numpy_state(model, state):
    """Copy a ``numpy_shufflenet`` state dict into ``model`` (same names)."""
    own = model.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            own[name].copy_(torch.from_numpy(value))
