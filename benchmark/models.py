"""The one model every method trains: an encoder per feature space into ℝᵏ and a shared linear head."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.data.images import BACKBONES

if TYPE_CHECKING:  # annotations only
    from benchmark.data.batches import Batch
    from benchmark.data.core import GroupDataset


class ImageCNN(nn.Module):
    """The digit encoder of *GroupDRO with Heterogeneous Feature Spaces* (2025, "the note"), §4.4: two
    convolutions, max-pool, sigmoid, flatten, one FC layer (``out``), whose output goes through the model's latent
    layer (ReLU in the note, see :data:`LATENTS`).

    Initialisation: variance-preserving (Kaiming) weights and a small positive FC bias. With PyTorch's
    default init the two linear convolutions shrink the input so much that the sigmoid outputs are
    nearly constant across samples, and within a few hundred Adam steps every latent ReLU of the small
    image groups dies for all inputs (measured on digits-hetero: digits16 stuck at chance).
    """

    def __init__(self, shape: tuple[int, ...], k: int, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c, h, w = shape
        self.features = nn.Sequential(
            nn.Conv2d(c, channels[0], 3, padding=1),
            nn.Conv2d(channels[0], channels[1], 3, padding=1),
            nn.MaxPool2d(2),
            nn.Sigmoid(),
            nn.Flatten(),
        )
        self.out = nn.Linear(channels[1] * (h // 2) * (w // 2), k)
        for conv in self.features[:2]:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
            nn.init.zeros_(conv.bias)
        nn.init.kaiming_normal_(self.out.weight, nonlinearity="relu")
        nn.init.constant_(self.out.bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class SequenceCNN(nn.Module):
    """1-D CNN for sequences (C×L): two convolutions with ReLU after each, max-pool, flatten, FC (``out``).

    The note's literal image design transposed to 1-D (no ReLU between convolutions, sigmoid after
    pooling) learns MNIST-1D far worse (docs/methods.md, "One model"), hence conv-ReLU here.
    """

    def __init__(self, shape: tuple[int, ...], k: int, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        c, length = shape
        self.features = nn.Sequential(
            nn.Conv1d(c, channels[0], 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels[0], channels[1], 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Flatten(),
        )
        self.out = nn.Linear(channels[1] * (length // 2), k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class VectorMLP(nn.Module):
    """Two-layer MLP for flat vectors: FC, ReLU, FC (``out``)."""

    def __init__(self, shape: tuple[int, ...], k: int, hidden: int = 128):
        super().__init__()
        (d,) = shape
        self.hidden = nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


ENCODERS: dict[str, type[nn.Module]] = {"image": ImageCNN, "sequence": SequenceCNN, "vector": VectorMLP}

LATENTS = {
    "relu": "ReLU after each encoder's last FC layer: the 2025 note's literal latent",
    "linear": "no activation after the last FC layer: z is affine in the encoder's features",
    "layernorm": "LayerNorm without affine parameters after the last FC layer: every z has mean 0 and norm √k",
    "relu-bias1": "ReLU as in the note, with the last FC layer's bias initialised to 1 (every unit starts active)",
    "tanh": "tanh after the last FC layer: bounded like layernorm, but each z keeps its own norm",
}
"""The latent layers the encoders end in (``train.latent``), name -> what it is."""


def latent_layer(latent: str, k: int) -> nn.Module:
    """The module that turns an encoder's last FC output into the latent z."""
    if latent not in LATENTS:
        raise BenchError(f"unknown latent '{latent}'; known: {', '.join(LATENTS)}")
    if latent == "linear":
        return nn.Identity()
    if latent == "layernorm":
        return nn.LayerNorm(k, elementwise_affine=False)
    if latent == "tanh":
        return nn.Tanh()
    return nn.ReLU()


class Standardize(nn.Module):
    """Fixed input standardisation by a feature space's training-set mean and std (scalars)."""

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(max(std, 1e-8)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


FINAL_LAYERS = ("fc", "classifier", "heads", "head")  # where torchvision's classification models keep theirs


def torchvision_backbone(name: str, pretrained: bool) -> tuple[nn.Module, int]:
    """A torchvision classification model ``name`` with its final layer replaced by the identity, and the size of
    the features it then outputs. ``pretrained`` loads its default ImageNet weights from torchvision's local cache;
    nothing is downloaded, so missing weights (or an unknown name) are an input error that says where they were
    looked for."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT if pretrained else None
        build = torchvision.models.get_model_builder(name)
    except ValueError:
        raise BenchError(f"unknown torchvision model '{name}' (e.g. resnet18, resnet50, vit_b_16)") from None
    if weights is not None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise BenchError(f"pretrained {name} weights not found at {cached} (nothing is downloaded here)")
    net = build(weights=weights)
    for attr in FINAL_LAYERS:
        layer = getattr(net, attr, None)
        linear = [m for m in layer.modules() if isinstance(m, nn.Linear)] if isinstance(layer, nn.Module) else []
        if linear:
            setattr(net, attr, nn.Identity())
            return net, linear[-1].in_features
    raise BenchError(f"torchvision model '{name}' has no final linear layer ({', '.join(FINAL_LAYERS)}) to remove")


class ResNet(nn.Module):
    """A torchvision ResNet (``resnet18``/``resnet50``) whose classifier is replaced by an FC layer into ℝᵏ (``out``);
    ``pretrained``: ImageNet weights from torchvision's local cache (:func:`torchvision_backbone`)."""

    def __init__(self, name: str, k: int, pretrained: bool = False):
        super().__init__()
        self.net, features = torchvision_backbone(name, pretrained)
        self.out = nn.Linear(features, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x))


def make_encoder(data: GroupDataset, space_id: int, k: int, latent: str = "layernorm") -> nn.Module:
    """The encoder for a feature space, ending in the ``latent`` layer: its named backbone (``space.encoder``)
    or its kind's default behind the training set's standardisation (disk-backed images come normalised by
    their transform)."""
    space = data.spaces[space_id]
    if space.encoder is not None:
        if space.encoder not in BACKBONES:
            raise BenchError(f"unknown encoder '{space.encoder}'; known: {', '.join(BACKBONES)}")
        name, _, pretrained = space.encoder.partition("-")
        layers = [ResNet(name, k, pretrained=bool(pretrained))]
    elif not isinstance(space.x, torch.Tensor):
        layers = [Standardize(0.0, 1.0), ENCODERS[space.kind](space.shape, k)]
    else:
        train_rows = data.row[(data.space == space_id) & (data.split_code == 0)]
        x = space.x[train_rows] if len(train_rows) else space.x
        layers = [Standardize(x.mean().item(), x.std().item()), ENCODERS[space.kind](space.shape, k)]
    if latent == "relu-bias1":
        nn.init.constant_(layers[-1].out.bias, 1.0)
    return nn.Sequential(*layers, latent_layer(latent, k))


class GroupModel(nn.Module):
    """Encoders (one per feature space) into a shared latent ℝᵏ, then one linear head to class logits.

    Groups that share a feature space share its encoder. ``encode`` makes one encoder call per space
    present in the batch; batches are ordered by space (see :func:`benchmark.data.batches.make_batches`).
    ``latent`` names the layer every encoder ends in (:data:`LATENTS`). Convolutions stay in the default NCHW
    memory format: channels-last ran ERM's steps 1.10–1.22× faster on this CPU, but its oneDNN kernels then sum in
    an order that depends on ``OMP_NUM_THREADS`` at process start (Ray sets it to 1 in its workers), so the same
    run would give other numbers under another launcher (README "Speed").
    """

    def __init__(self, data: GroupDataset, k: int = 64, latent: str = "layernorm"):
        super().__init__()
        self.k = k
        self.encoders = nn.ModuleList(make_encoder(data, s, k, latent) for s in range(len(data.spaces)))
        self.head = nn.Linear(k, data.num_classes)

    @staticmethod
    def inputs(data: GroupDataset, batch: Batch) -> list[torch.Tensor]:
        """The batch's encoder inputs, one tensor per feature space (in batch order within the space; empty
        spaces give an empty slice): rows of in-memory spaces; for disk-backed spaces the images
        :func:`benchmark.data.images.prefetched` loaded, or else loaded here from the batch's ``rows``."""
        rows = torch.split(data.row[batch.idx], batch.space_sizes)
        return [
            batch.inputs[s]
            if s in batch.inputs
            else space.x.load(batch.rows[s]).to(data.device)
            if s in batch.rows
            else space.x[r]
            for s, (space, r) in enumerate(zip(data.spaces, rows))
        ]

    def encode(self, data: GroupDataset, batch: Batch) -> torch.Tensor:
        """Latents z (len(batch) × k) in batch order."""
        parts = [
            encoder(x)
            for encoder, x, size in zip(self.encoders, self.inputs(data, batch), batch.space_sizes)
            if size > 0
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def encode_together(self, data: GroupDataset, batches: list[Batch]) -> list[torch.Tensor]:
        """Latents of each of ``batches`` (as :meth:`encode` gives them) from one encoder call per feature space
        on all their samples of that space: fewer, larger kernels than one :meth:`encode` per batch, the same
        values up to floating-point reassociation (an encoder with batch statistics, a ResNet's BatchNorm,
        normalises the batches together)."""
        inputs = [self.inputs(data, batch) for batch in batches]
        chunks = []  # per space: each batch's latents of that space
        for s, encoder in enumerate(self.encoders):
            sizes = [batch.space_sizes[s] for batch in batches]
            chunks.append(encoder(torch.cat([x[s] for x in inputs])).split(sizes) if sum(sizes) else None)
        return [
            torch.cat([space[i] for space, size in zip(chunks, batch.space_sizes) if size > 0])
            for i, batch in enumerate(batches)
        ]

    def forward(self, data: GroupDataset, batch: Batch) -> torch.Tensor:
        """Class logits for a batch."""
        return self.head(self.encode(data, batch))
