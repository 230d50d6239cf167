"""Training photos: a COCO-like folder of images, resized then cropped to squares."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from fast_style.images import find_images, open_rgb, to_tensor


class PhotoFolder(Dataset):
    def __init__(self, root: str | Path, image_size: int = 256, train: bool = True) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: training photo folder not found")
        self.files = find_images(self.root)
        if not self.files:
            raise FileNotFoundError(f"{self.root}: no .jpg/.jpeg/.png/.webp/.bmp images in this folder")
        crop = v2.RandomCrop(image_size) if train else v2.CenterCrop(image_size)
        self.transform = v2.Compose([v2.Resize(image_size, antialias=True), crop])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(to_tensor(open_rgb(self.files[index])))  # (3, S, S)


class PhotoDataModule(L.LightningDataModule):
    def __init__(self, root: str, image_size: int = 256, batch_size: int = 4, num_workers: int = 2) -> None:
        super().__init__()
        self.root, self.image_size = root, image_size
        self.batch_size, self.num_workers = batch_size, num_workers

    def setup(self, stage: str | None = None) -> None:
        self.train_set = PhotoFolder(self.root, self.image_size, train=True)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(self.train_set) >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def preview_batch(self, count: int) -> torch.Tensor:
        """The first `count` photos, centre-cropped: fixed inputs to watch training on."""
        fixed = PhotoFolder(self.root, self.image_size, train=False)
        return torch.stack([fixed[i] for i in range(min(count, len(fixed)))])  # (N, 3, S, S)
