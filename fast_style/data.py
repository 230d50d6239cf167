"""Training photos: a COCO-like folder of images, resized then cropped to squares."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import lightning as L
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms import v2

from fast_style.config import VGG_MIN_SIDE
from fast_style.images import (DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, find_images, no_folder, open_rgb, photo_folder,
                               too_small_for_vgg)
from fast_style.pixels import fit_longest, to_bytes, to_tensor

log = logging.getLogger(__name__)
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# Lightning wraps every loader, training's and a dataset run's, in a CombinedLoader whose use of
# torch's pytree torch now warns about: not the user's to act on.
LOADER_WARNING = r".*isinstance\(treespec, LeafSpec\).*"


def readable(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split into files whose image header Pillow reads, and the rest. Only the header is
    read, so this is quick; damage further in is caught when the photo is decoded."""
    good, bad = [], []
    for path in files:
        try:
            with Image.open(path):
                good.append(path)
        except UNREADABLE:
            bad.append(path)
    return good, bad


WIDEST = 4  # the longest side of the window a photo is cut to before its scaling, in short sides


def window(photo: torch.Tensor) -> torch.Tensor:
    """A random part of a strip, WIDEST times as long as it is wide: scaled by its short side, a
    20000x2 banner became 655 megapixels (2.8 GB) for one crop, and a longer one killed its
    worker. A photo within that ratio is whole, so the crop sees the same parts as it did."""
    height, width = photo.shape[-2:]  # (C, H, W)
    long = WIDEST * min(height, width)
    if max(height, width) <= long:
        return photo
    start = int(torch.randint(max(height, width) - long + 1, ()))
    return photo[..., start:start + long, :] if height > width else photo[..., start:start + long]


class PhotoFolder(Dataset):
    """Unreadable photos are skipped with a warning, never a crash at step 9,000."""

    def __init__(self, root: str | Path, image_size: int = 256) -> None:
        if image_size < 1:
            raise ValueError(f"data.image_size must be a positive number of pixels, not {image_size}")
        self.root = photo_folder(root)
        self.files, bad = readable(find_images(self.root))
        if bad:
            names = ", ".join(str(p.relative_to(self.root)) for p in bad[:5])
            log.warning("skipping %d unreadable file(s) in %s: %s%s", len(bad), self.root, names, ", ..." if len(bad) > 5 else "")
        if not self.files:
            raise FileNotFoundError(f"{self.root}: no readable {'/'.join(IMAGE_EXTENSIONS)} images in this folder")
        self.transform = v2.Compose([v2.Lambda(window), v2.Resize(image_size, antialias=True), v2.RandomCrop(image_size)])
        self.decoded_side = 2 * image_size  # a JPEG decoded at least twice the size it is scaled to (open_image)
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                # (3, S, S) uint8: a quarter of the bytes from the workers, and torchvision resizes
                # uint8 twice as fast; the module makes it [0, 1] floats on its device.
                return self.transform(to_bytes(open_rgb(path, DEFAULT_MAX_PIXELS, self.decoded_side)))
            except UNREADABLE as e:
                self.skipped += 1
                log.warning("skipping unreadable photo %s (%s); %d skipped in this worker", path, e, self.skipped)
        raise RuntimeError(f"{self.root}: no photo in this folder can be decoded")


@contextlib.contextmanager
def loader_workers_killed_on_error() -> Iterator[None]:
    """Around a Lightning loop with loader workers. They ignore SIGTERM (ignore_sigterm), which is
    how Python's exit ends them, so an error left the process waiting for them for good (a bad
    seed in train, a photo that did not fit its batch in a dataset run)."""
    try:
        yield
    except BaseException:
        for worker in multiprocessing.active_children():
            worker.kill()
        raise


def ignore_sigterm(worker_id: int) -> None:
    """A loader worker's start. SIGTERM to the whole process group (a scheduler's stop) is the
    main process's to handle: it ends the step and saves. A worker that died of it first crashed
    the run, unsaved. The worker still ends with its main process."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _worker_init(worker_id: int, rank: int) -> None:
    ignore_sigterm(worker_id)
    pl_worker_init_function(worker_id, rank)  # what seed_everything(workers=True) sets otherwise


class EpochSampler(DistributedSampler):
    """Each epoch's order from (seed, epoch), each process its share, as DistributedSampler's, and
    `skip` starts an epoch part-way. Being a DistributedSampler, Lightning uses it as it is, with
    one process or many."""

    def __init__(self, dataset: Dataset, world: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        self.skip = 0  # photos of this process's share already trained on in this epoch

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())[self.skip:]
        self.skip = 0  # the next epoch is whole; __len__ stays the whole epoch's, as Lightning counts
        return iter(indices)


class ResumableLoader(DataLoader):
    """A checkpoint keeps where the epoch was (Lightning saves and restores a loader's state_dict),
    so a run resumed part-way through an epoch trains on the photos that epoch had not reached,
    where Lightning alone would draw the epoch afresh and warn that results may be unreliable."""

    sampler: EpochSampler
    batches = 0  # of this epoch, given out: Lightning fetches no batch ahead of a loader of known length

    def __iter__(self) -> Iterator[torch.Tensor]:  # type: ignore[override]  # a generator, counting
        self.batches = self.sampler.skip // (self.batch_size or 1)
        for batch in super().__iter__():
            self.batches += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self.batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        ended = state["batches"] >= len(self)
        self.sampler.set_epoch(state["epoch"] + ended)  # workers take their first indices before Lightning sets it
        self.sampler.skip = 0 if ended else state["batches"] * (self.batch_size or 1)


class ValidationPhotos(Dataset):
    """Whole photos never trained on, their longest side at the training size: what `evaluate
    --photos DIR --size N` scores, so the run's val/ curves and evaluate's table agree."""

    def __init__(self, root: str | Path, size: int) -> None:
        self.root, self.size = Path(root).expanduser(), size
        problem = no_folder(self.root, "no validation photos there")
        self.files = [] if problem else find_images(self.root)
        if not self.files:
            raise FileNotFoundError(f"{self.root}: {problem or 'no validation photos there'} (data.val_root: a folder "
                                    "of photos never trained on, or null)")
        _, bad = readable(self.files)
        if bad:  # the scores are means over every photo: none may drop out silently
            raise ValueError(f"{bad[0]}: cannot be read as an image (data.val_root); move it out of {self.root}")
        for path in self.files:  # a strip of a photo was VGG's error at the first validation, naming no file
            with Image.open(path) as im:
                if too_small_for_vgg(im.width, im.height, size):
                    raise ValueError(f"{path}: {im.width}x{im.height} at data.image_size={size} is too small for "
                                     f"VGG-16's losses ({VGG_MIN_SIDE} pixels or more a side); move it out of {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return fit_longest(to_tensor(open_rgb(self.files[index], DEFAULT_MAX_PIXELS))[None], self.size)[0]  # (3, H, W)


class PhotoDataModule(L.LightningDataModule):
    def __init__(self, root: str, image_size: int = 256, batch_size: int = 4, num_workers: int = 2,
                 val_root: str | None = None, seed: int = 0) -> None:
        super().__init__()
        self.root, self.image_size, self.val_root, self.seed = root, image_size, val_root, seed
        self.batch_size, self.num_workers = batch_size, num_workers

    def setup(self, stage: str | None = None) -> None:
        if not hasattr(self, "train_set"):  # train() calls it early to fail fast; Lightning again
            self.train_set = PhotoFolder(self.root, self.image_size)
            self.val_set = ValidationPhotos(self.val_root, self.image_size) if self.val_root else None
            if self.val_set is not None:
                shared = {p.resolve() for p in self.val_set.files} & {p.resolve() for p in self.train_set.files}
                if shared:
                    log.warning("%d of the %d photos of data.val_root (%s) are training photos too: val/ is not "
                                "held out", len(shared), len(self.val_set), self.val_root)

    def train_dataloader(self) -> DataLoader:
        assert self.trainer is not None, "Lightning asks for the training photos"
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = EpochSampler(self.train_set, world, rank, self.seed)
        return ResumableLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=len(sampler) >= self.batch_size,  # a folder of fewer photos still trains
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=partial(_worker_init, rank=rank),
            pin_memory=torch.cuda.is_available(),  # page-locked batches copy to the GPU asynchronously
        )

    def val_dataloader(self) -> DataLoader | list:
        """One photo a batch (whole photos differ in size), no worker processes (a few photos).
        Across processes each photo is scored once, so that the means are evaluate's: Lightning's
        own sampler would repeat some to give every process as many."""
        if self.val_set is None:
            return []
        assert self.trainer is not None, "Lightning asks for the validation photos"
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if world == 1:
            return DataLoader(self.val_set, batch_size=1)
        if len(self.val_set) < world:
            raise ValueError(f"{self.val_root}: {len(self.val_set)} validation photo(s) for {world} processes; "
                             "data.val_root needs at least one photo per process")
        sampler = UnrepeatedDistributedSampler(self.val_set, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(self.val_set, batch_size=1, sampler=sampler)

    def preview_batch(self, count: int) -> torch.Tensor:
        """The first `count` photos, centre-cropped: fixed inputs to watch training on."""
        if getattr(self, "_preview", None) is None:  # decoded once per run
            self.setup()
            crop = v2.Compose([v2.Resize(self.image_size, antialias=True), v2.CenterCrop(self.image_size)])
            photos: list[torch.Tensor] = []
            for path in self.train_set.files:
                if len(photos) == count:
                    break
                try:
                    photos.append(crop(to_tensor(open_rgb(path, DEFAULT_MAX_PIXELS))))
                except UNREADABLE:
                    continue
            self._preview = torch.stack(photos)  # (N, 3, S, S)
        return self._preview
