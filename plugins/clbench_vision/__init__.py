"""clbench's image streams (permuted, rotated and split MNIST, split Fashion-MNIST, split CIFAR-10
and CIFAR-100) and image models (``cnn``, ``resnet18-reduced``), on torchvision's data sets."""

__version__ = "0.1.0"
