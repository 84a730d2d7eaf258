"""ResNet: the course's pre-activation ConvNet.

A PreAct block is `x + Conv3x3(ReLU(BN(x)))`: stride 1, padding 1, the same channels in and out,
so the identity path carries the signal untouched and the block only adds a correction to it.

    | layer | what                               | channels | spatial |
    |-------|------------------------------------|----------|---------|
    | conv0 | conv 3x3, padding 1                | 3->64    | 32      |
    |       | PreAct                             | 64       | 32      |
    | conv1 | conv 1x1                           | 64->128  | 32      |
    |       | maxpool 3x3, stride 2, padding 1   |          | 16      |
    |       | 2 x PreAct                         | 128      | 16      |
    | conv2 | conv 1x1                           | 128->256 | 16      |
    |       | maxpool                            |          | 8       |
    |       | 2 x PreAct                         | 256      | 8       |
    | conv3 | conv 1x1                           | 256->512 | 8       |
    |       | maxpool                            |          | 4       |
    |       | 2 x PreAct                         | 512      | 4       |
    |       | maxpool                            |          | 2       |
    |       | 2 x PreAct                         | 512      | 2       |
    |       | maxpool                            |          | 1       |
    |       | BN, ReLU, flatten, linear          | 512->10  | 1       |

Every conv and the linear layer have a bias and PyTorch's default init, as in the course.
    x (B, 3, 32, 32) -> logits (B, 10)

Options (models/conv.py): `channels_last` (NHWC, what GPU tensor cores want) and `tta` (test-time
augmentation in val/test: 1 = mirror, 2 = mirror + 1-pixel shifts). The speed recipe's net is another
model: FastResNet (models/fast_resnet.py, `--preset fast`).
"""
import torch
import torch.nn as nn

from .conv import ConvClassifier


class PreAct(nn.Module):
    """x + Conv3x3(ReLU(BN(x))): a residual block whose branch sees normalised, rectified input."""

    def __init__(self, channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv(torch.relu(self.bn(x)))


def course_net(num_classes=10):
    pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)  # noqa: E731  (halves the side: 32->16->...->1)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), PreAct(64),                              # (B, 64, 32, 32)
        nn.Conv2d(64, 128, 1), pool(), PreAct(128), PreAct(128),                 # (B, 128, 16, 16)
        nn.Conv2d(128, 256, 1), pool(), PreAct(256), PreAct(256),                # (B, 256, 8, 8)
        nn.Conv2d(256, 512, 1), pool(), PreAct(512), PreAct(512),                # (B, 512, 4, 4)
        pool(), PreAct(512), PreAct(512),                                        # (B, 512, 2, 2)
        pool(), nn.BatchNorm2d(512), nn.ReLU(), nn.Flatten(), nn.Linear(512, num_classes),  # (B, 10)
    )


class ResNet(ConvClassifier):
    """the course's pre-activation ConvNet (course: 0.79)"""
    name = "resnet"

    def build_net(self):
        return course_net(self.hparams.num_classes)
