"""Training a TransformerNet against the perceptual losses, as a LightningModule."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import make_grid

from fast_style.config import LossConfig
from fast_style.arbitrary import ArbitraryNet, split_paintings
from fast_style.flicker import centre_grid
from fast_style.gallery import GalleryNet
from fast_style.pixels import bytes_to_floats
from fast_style.losses import perceptual_loss
from fast_style.model_file import build_network, network_settings


log = logging.getLogger("fast_style")


class NonFiniteLossError(RuntimeError):
    pass


class StyleTransferModule(L.LightningModule):
    """Hyperparameters are plain dicts (the Hydra groups), so checkpoints load with
    `torch.load(weights_only=True)` and stylize needs neither Lightning nor Hydra."""

    def __init__(
        self, model: dict, style: dict, loss: dict, optim: dict, preview: dict | None = None, stability: dict | None = None,
        extend: list[str] | None = None, channels_last: bool = False, rehearse: list[str] | None = None,
    ) -> None:
        """`extend`: the styles of a gallery that this run adds `style` to; only the new
        painting's norm parameters learn, the shared network and the other paintings stay.
        `rehearse`: with `extend`, those styles' paintings: the shared network learns too, and half
        the steps go to the gallery's paintings, so that they keep their pictures.
        `channels_last`: weights and batches in NHWC (fast_style.hardware.training_channels_last)."""
        super().__init__()
        self.save_hyperparameters()
        self.transformer = build_network(*network_settings(model, style, extend))  # Transformer-, Gallery- or ArbitraryNet
        paintings = style.get("images") or ([*rehearse, style["image"]] if rehearse else style["image"])
        held_out: list = []
        if style.get("folder"):  # the held-out paintings get loss targets too: previews and validation
            learned, held_out = split_paintings(style["folder"], style.get("holdout_every", 0))
            paintings = [*(style.get("images") or []), *learned]
            self.hparams["held_out"] = [str(p) for p in held_out]
        self.loss = perceptual_loss([*paintings, *held_out] if held_out else paintings, style.get("size"),
                                    {"style": style["weight"]}, LossConfig(**loss))
        # (network's style index, loss's painting index) of the paintings this run learns
        n = len(self.transformer.styles) if isinstance(self.transformer, GalleryNet) else 1
        if isinstance(self.transformer, ArbitraryNet):
            n = len(paintings)
            self.transformer.fit_inputs(self.loss.style_statistics[:n])
        self.learned = [(n - 1, 0)] if extend and not rehearse else [(i, i) for i in range(n)]
        # A rehearsing run gives the new painting half the steps; otherwise all are alike.
        self.chances = torch.tensor([0.5 / (n - 1)] * (n - 1) + [0.5]) if rehearse else None
        self.held_out = list(range(n, n + len(held_out)))  # loss indices of the paintings kept out
        if extend and not rehearse:
            self.transformer.body.requires_grad_(False)
        # `optim.ema`: an exponential moving average of the weights is what previews show and the
        # export writes: with one painting a step, the weights swing from painting to painting
        # (docs/arbitrary.md), and the average settles where the last step need not.
        self.ema = None
        if optim.get("ema"):
            self.ema = AveragedModel(self.transformer, multi_avg_fn=get_ema_multi_avg_fn(optim["ema"]), use_buffers=True)
            self.ema.requires_grad_(False)  # no gradients: DDP would wait for them
        self.preview = preview or {"every_n_steps": 0, "count": 0}
        self.trained_before = {"steps": 0, "images_seen": 0}  # init_weights' training (fit.py sets it)
        self.stability = {"weight": 0.0, "noise": 0.0, "shift": 0, "zoom": 0.0, **(stability or {})}
        self.recent: dict[str, deque] = {}
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)
        self._last_step_time: float | None = None
        self._previewed_step = -1
        self.val_losses: dict[str, float] = {}  # the last validation's means (data.val_root), for the model file
        self.validated_step = -1

    @property
    def averaged(self) -> torch.nn.Module:
        """The network to show and export: the moving average, once it has begun."""
        return self.ema.module if self.ema is not None and self.ema.n_averaged else self.transformer

    def code(self, style: int, net: torch.nn.Module | None = None) -> torch.Tensor | None:
        """The style code of painting `style`: a gallery's one-hot weights, an arbitrary network's
        reading of the painting (learned: gradients reach the predictor); None for one style."""
        net = net if net is not None else self.transformer
        if isinstance(net, GalleryNet):
            return net.one_hot(style).to(self.device)
        if isinstance(net, ArbitraryNet):
            return net.embed(self.loss.style_statistics[style])
        return None

    def forward(self, x: torch.Tensor, style: int = 0, run: str = "__call__",
                net: torch.nn.Module | None = None) -> torch.Tensor:
        """`style`: which painting, for a network of several; `run="forward"` skips a compiled
        wrapper; `net`: another copy of the network (the average) instead of the one trained."""
        net = net if net is not None else self.transformer
        code = self.code(style, net)
        call = getattr(net, run)
        return call(x) if code is None else call(x, code)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        # A gallery learns one painting a step, chosen at random (Dumoulin et al. 2017).
        pick = torch.randint(len(self.learned), ()) if self.chances is None else torch.multinomial(self.chances, 1)
        style, painting = self.learned[int(pick)]
        if batch.dtype == torch.uint8:  # the photos' transport (fast_style.data), made the one pixel convention here
            batch = bytes_to_floats(batch, self.memory_format)
        batch = batch.contiguous(memory_format=self.memory_format)
        output = self(batch, style)
        losses = self.loss(output, batch, painting)
        if self.stability["weight"]:
            losses["stability"] = self.stability["weight"] * self.stability_loss(batch, output, style)
            losses["total"] = losses["total"] + losses["stability"]
        if not torch.isfinite(losses["total"]):
            raise NonFiniteLossError(f"loss became {losses['total'].item()} at step {self.global_step}; stopping")
        for name, value in losses.items():
            self.log(f"loss/{name}", value, prog_bar=name == "total")
            self.recent.setdefault(name, deque(maxlen=50)).append(value.detach())  # no GPU sync per step
        now = time.perf_counter()
        if self._last_step_time is not None:
            images = batch.shape[0] * self.trainer.world_size
            self.log("img_per_s", images / (now - self._last_step_time), prog_bar=True)
        self._last_step_time = now
        return losses["total"]

    def stability_loss(self, batch: torch.Tensor, output: torch.Tensor, style: int = 0) -> torch.Tensor:
        """Gupta et al. 2017 (arXiv:1705.02092): a photo and a slightly changed copy must come out
        alike, so video frames that differ by sensor noise or a small motion do not flicker. The
        copy is noisy and, with `shift`, moved by up to that many pixels: the network downsamples
        by 4, so shifts that are not multiples of 4 are what make a panning shot shimmer. With
        `zoom` the copy is also magnified about its centre by up to 1 + zoom, and compared with
        the output magnified alike: a zoom moves every part of the frame by another sub-stride
        amount, which the run-time grid lock (fast_style.motion) cannot follow."""
        dy, dx = (int(d) for d in torch.randint(0, self.stability["shift"] + 1, (2,)))
        moved = batch[..., dy:, dx:]  # (B, 3, H - dy, W - dx): the scene moved up-left
        target = output[..., dy:, dx:].float()
        if self.stability["zoom"]:
            grid = centre_grid(*moved.shape[-2:], 1 + self.stability["zoom"] * float(torch.rand(()))).to(batch.device)
            grid = grid.expand(len(batch), -1, -1, -1)
            moved = torch.nn.functional.grid_sample(moved.float(), grid, align_corners=True)
            target = torch.nn.functional.grid_sample(target, grid, align_corners=True)
        noisy = (moved + self.stability["noise"] * torch.randn_like(moved)).clamp(0, 1)
        # forward, not __call__: under `compile=true` the copy's size changes from step to step,
        # and a graph compiled per size would cost more than it saves. It runs eagerly.
        copy = self(noisy, style, run="forward")
        return torch.nn.functional.mse_loss(copy.float(), target)

    def on_train_batch_end(self, outputs: Any, batch: torch.Tensor, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.transformer)
        every = self.preview["every_n_steps"]
        if every and (self.global_step == 1 or self.global_step % every == 0):
            self.log_preview()

    def on_train_end(self) -> None:
        if self.preview["every_n_steps"] and self._previewed_step != self.global_step:  # not twice at one step
            self.log_preview()

    @torch.no_grad()
    def log_preview(self) -> None:
        """A grid of fixed photos (top) and the current network's output (bottom)."""
        logger = self.logger
        datamodule = getattr(self.trainer, "datamodule", None)
        if not self.trainer.is_global_zero or logger is None or not hasattr(logger.experiment, "add_image"):
            return
        if datamodule is None or not self.preview["count"]:
            return
        photos = datamodule.preview_batch(self.preview["count"]).to(self.device)
        # Each photo in another painting: an arbitrary network's are paintings it never learned.
        paintings = self.held_out or [i for i, _ in self.learned]
        styles = [paintings[i % len(paintings)] for i in range(len(photos))]
        with torch.autocast(self.device.type, enabled=False):  # eager (run="forward"), as validation
            stylized = torch.cat([self(photo[None], s, run="forward", net=self.averaged)
                                  for photo, s in zip(photos, styles)]).float().clamp(0, 1)
        grid = make_grid(torch.cat([photos, stylized]), nrow=len(photos), padding=4, pad_value=1.0)
        logger.experiment.add_image("preview", grid, self.global_step)
        self._previewed_step = self.global_step

    def validation_styles(self) -> list[tuple[int, int, str]]:
        """(network style, loss painting, name) of each painting that validation scores: the one
        painting, a gallery's paintings this run learns, or those an arbitrary network never saw."""
        if self.held_out:
            return [(i, i, Path(p).stem) for i, p in zip(self.held_out, self.hparams["held_out"])]
        names = self.transformer.styles if isinstance(self.transformer, GalleryNet) else None
        return [(s, p, names[s] if names else self.hparams["style"]["name"]) for s, p in self.learned]

    def on_validation_epoch_start(self) -> None:
        self._val_sums: dict[tuple[str, str], torch.Tensor] = {}  # (painting name or "" for all, term): (sum, count)

    @torch.no_grad()
    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """The exported network (the average), in fp32 and clamped as `stylize` gives it: each photo
        in each painting of validation_styles, scored as `evaluate` scores it. Eagerly under
        `compile=true` (forward, not __call__): without gradients the compiled network and loss
        would each compile again, which took longer than the eager passes (11 s on 2 AVX2 cores
        for one preview of the test's tiny network)."""
        with torch.autocast(self.device.type, enabled=False):
            for style, painting, name in self.validation_styles():
                output = self(batch, style, run="forward", net=self.averaged).float().clamp(0, 1)
                for term, value in self.loss.forward(output, batch, painting).items():
                    one = torch.stack([value.detach().float(), torch.ones((), device=value.device)])
                    for key in (("", term), (name, term)):
                        self._val_sums[key] = self._val_sums[key] + one if key in self._val_sums else one

    def on_validation_epoch_end(self) -> None:
        keys = sorted(self._val_sums)
        sums = self.all_gather(torch.stack([self._val_sums[k] for k in keys]))  # (world, keys, 2), or (keys, 2)
        assert isinstance(sums, torch.Tensor)
        sums = sums.sum(0) if sums.dim() == 3 else sums
        means = {key: (total / count).item() for key, (total, count) in zip(keys, sums)}
        self.val_losses = {term: v for (name, term), v in means.items() if not name}
        styles = len(self.validation_styles())
        curves = {f"val/{term}": v for term, v in self.val_losses.items()}
        if styles > 1 and isinstance(self.transformer, GalleryNet):  # a curve per style too (not for the held-out paintings)
            curves |= {f"val/{name}/{term}": v for (name, term), v in means.items() if name}
        if self.logger is not None:  # at the step the log line names (self.log would give the one before, in fit)
            self.logger.log_metrics(curves, step=self.global_step)
        self.validated_step = self.global_step
        if self.trainer.is_global_zero:
            photos = round(sums[keys.index(("", "total")), 1].item()) // styles
            log.info("val at step %d: total %.4g (content %.4g, style %.4g), %d photo(s) x %d painting(s)", self.global_step,
                     self.val_losses["total"], self.val_losses["content"], self.val_losses["style"], photos, styles)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Rows of a gallery's scales and shifts that get no gradient (the paintings not learned
        # in this run) stay as they are: Adam moves nothing whose gradients were all zero.
        lr = self.hparams.optim["lr"]
        net = self.transformer
        if isinstance(net, GalleryNet):
            norms = [net.scales, net.shifts]
        elif isinstance(net, ArbitraryNet):
            norms = [*net.predictor.parameters(), *net.to_norms.parameters()]
        else:
            return torch.optim.Adam(net.parameters(), lr=lr)
        # A painting's norm parameters see one step in N (and all of them, adding a painting):
        # `optim.norm_lr` lets them, and what predicts them, move faster than the shared convolutions.
        body = [p for p in net.body.parameters() if p.requires_grad]
        groups = [{"params": norms, "lr": self.hparams.optim.get("norm_lr") or lr}]
        return torch.optim.Adam(groups + ([{"params": body}] if body else []), lr=lr)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The frozen VGG is 59 MB of weights everyone already has: never saved.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("loss.")}
        # What init_weights had been trained for, and how many images a step takes: the checkpoint's
        # reader (fast_style.model_file) counts the model's whole training from them.
        data = getattr(self.trainer, "datamodule", None)  # set by Lightning's data connector, not declared on Trainer
        per_step = data.batch_size * self.trainer.world_size if data is not None else 0
        checkpoint["trained_before"] = {**self.trained_before, "images_per_step": per_step}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The VGG, and an average that a run without one did not save (n_averaged 0: the first
        # step's update copies the weights it resumes with).
        if before := checkpoint.get("trained_before"):  # a resumed run: what its first command started from
            self.trained_before = {"steps": before["steps"], "images_seen": before["images_seen"]}
        state = checkpoint["state_dict"]
        keep = [*self.loss.state_dict(prefix="loss.").items()]
        if self.ema is not None:
            keep += self.ema.state_dict(prefix="ema.").items()
        else:  # an average this run does not keep
            for key in [k for k in state if k.startswith("ema.")]:
                del state[key]
        for key, value in keep:
            state.setdefault(key, value)

    def summary(self) -> dict[str, Any]:
        """What a model card needs: mean losses over the last steps."""
        means = {name: torch.stack(list(v)).float().mean().item() for name, v in self.recent.items() if v}
        return {name: round(m, 4) for name, m in means.items() if math.isfinite(m)}
