"""A realistic-looking MountainCar renderer, drawn procedurally with numpy and Pillow.

Rocamonde et al. (2023) found that CLIP rewards for MountainCar are better shaped when the scene
looks like a photograph rather than gymnasium's black-on-white line drawing. This module draws the
same scene (same track curve, same scale, same goal position, same 400×600 frame) with a sky
gradient and clouds, distant hills, a grassy and rocky mountain with a dirt track, a yellow goal
flag, and a car sprite with body, windows and wheels tilted to the slope.

Everything is deterministic: noise comes from a fixed seed, and the static background is drawn
once per (size, track, seed) and cached, so each frame only pastes the rotated car.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "MountainCarScene",
    "TexturedMountainCarRenderer",
    "render_mountaincar",
    "track_height",
]

# Render at this multiple of the output size and downsample: cheap anti-aliasing for shapes.
_SUPERSAMPLE = 4


def track_height(x: float | np.ndarray) -> float | np.ndarray:
    """Height of the MountainCar track at position ``x`` (gymnasium's ``_height``)."""
    return np.sin(3 * x) * 0.45 + 0.55


def _track_slope(x: float) -> float:
    """d(height)/dx of :func:`track_height`."""
    return 1.35 * math.cos(3 * x)


@dataclass(frozen=True)
class MountainCarScene:
    """Geometry of the scene: the frame size and the track's world coordinates.

    Defaults match gymnasium's ``MountainCar-v0``; ``MountainCarContinuous-v0`` has its goal at
    0.45.
    """

    height: int = 400
    width: int = 600
    min_position: float = -1.2
    max_position: float = 0.6
    goal_position: float = 0.5

    @property
    def scale(self) -> float:
        """Pixels per world unit, the same on both axes (as in gymnasium's renderer)."""
        return self.width / (self.max_position - self.min_position)

    def to_screen(self, position: float) -> tuple[float, float]:
        """Pixel (x, y) of the track surface at a position, y measured down from the top."""
        x = (position - self.min_position) * self.scale
        y = self.height - float(track_height(position)) * self.scale
        return x, y


def _value_noise(
    rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.random((max(cells[0], 2), max(cells[1], 2))).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img), 0.0, 1.0)


def _fractal_noise(
    rng: np.random.Generator, shape: tuple[int, int], base_cell: int = 64, octaves: int = 5
) -> np.ndarray:
    """Sum of value-noise octaves (each twice as fine, half the weight), normalised to [0, 1]."""
    h, w = shape
    total = np.zeros(shape, dtype=np.float32)
    weight_sum = 0.0
    cell = base_cell
    weight = 1.0
    for _ in range(octaves):
        total += weight * _value_noise(rng, shape, (h // cell + 2, w // cell + 2))
        weight_sum += weight
        cell = max(cell // 2, 1)
        weight *= 0.5
    total /= weight_sum
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / (hi - lo + 1e-9)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel linear blend of two colours (broadcast) by weights ``t`` in [0, 1]."""
    t = t[..., None]
    return a * (1.0 - t) + b * t


def _draw_background(scene: MountainCarScene, seed: int) -> Image.Image:
    h, w = scene.height, scene.width
    rng = np.random.default_rng(seed)
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]

    # Sky: deep blue overhead fading to a hazy pale blue at the horizon.
    t_sky = np.broadcast_to(np.clip(rows / (0.75 * h), 0, 1), (h, w))
    sky = _mix(np.array([58.0, 112.0, 190.0]), np.array([196.0, 221.0, 240.0]), t_sky)
    canvas = sky

    # Clouds: clusters of overlapping ellipses, blurred, with a little grey on their undersides.
    cloud_mask = Image.new("L", (w, h), 0)
    shade_mask = Image.new("L", (w, h), 0)
    draw, shade = ImageDraw.Draw(cloud_mask), ImageDraw.Draw(shade_mask)
    for _ in range(6):
        cx, cy = rng.uniform(0, w), rng.uniform(0.04 * h, 0.3 * h)
        size = rng.uniform(0.05, 0.09) * w
        for _ in range(7):
            ox, oy = rng.normal(0, size * 0.7), rng.normal(0, size * 0.15)
            rx, ry = size * rng.uniform(0.45, 0.8), size * rng.uniform(0.25, 0.4)
            box = (cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry)
            draw.ellipse(box, fill=int(rng.uniform(170, 235)))
            shade.ellipse((box[0], cy + oy, box[2], box[3]), fill=110)
    cloud = np.asarray(cloud_mask.filter(ImageFilter.GaussianBlur(0.012 * w)), np.float32) / 255
    under = np.asarray(shade_mask.filter(ImageFilter.GaussianBlur(0.015 * w)), np.float32) / 255
    cloud_colour = _mix(np.array([255.0, 255.0, 255.0]), np.array([200.0, 205.0, 215.0]), under)
    canvas = canvas * (1 - cloud[..., None]) + cloud_colour * cloud[..., None]

    # Two ranges of distant hills, lighter (hazier) the further away they are.
    for colour, base, amp, freq in (
        ((150.0, 170.0, 195.0), 0.42, 0.09, 2.0),
        ((112.0, 140.0, 150.0), 0.55, 0.07, 3.5),
    ):
        phase = rng.uniform(0, 2 * np.pi, size=3)
        xs = cols[0] / w
        ridge = base * h - amp * h * (
            np.sin(2 * np.pi * freq * xs + phase[0])
            + 0.5 * np.sin(2 * np.pi * 2.3 * freq * xs + phase[1])
            + 0.25 * np.sin(2 * np.pi * 5.1 * freq * xs + phase[2])
        )
        inside = rows >= ridge[None, :]
        texture = 0.85 + 0.3 * _fractal_noise(rng, (h, w), base_cell=32, octaves=3)[..., None]
        canvas = np.where(inside[..., None], np.array(colour) * texture, canvas)

    # The mountain the car drives on: everything below the track curve.
    xs_world = scene.min_position + (cols[0] + 0.5) / scene.scale
    surface = h - np.asarray(track_height(xs_world)) * scene.scale  # y of the track per column
    depth = rows - surface[None, :]  # pixels below the surface (negative above)
    ground = depth >= 0

    grass_noise = _fractal_noise(rng, (h, w), base_cell=48, octaves=5)
    fine = _fractal_noise(rng, (h, w), base_cell=4, octaves=2)
    rock_noise = _fractal_noise(rng, (h, w), base_cell=40, octaves=4)
    grass_light, grass_dark = np.array([104.0, 156.0, 62.0]), np.array([46.0, 96.0, 38.0])
    grass = _mix(grass_dark, grass_light, 0.6 * grass_noise + 0.4 * fine)
    # Deeper into the hill the slope is further from the viewer's light: darken gradually.
    grass *= (1.0 - 0.35 * np.clip(depth / (0.5 * h), 0, 1))[..., None]
    rock = _mix(np.array([96.0, 92.0, 86.0]), np.array([165.0, 160.0, 150.0]), fine)
    rockiness = np.clip((rock_noise - 0.62) / 0.08, 0, 1) * (depth > 0.04 * h)
    terrain = _mix(grass, rock, rockiness)

    # A dirt track a few pixels deep along the surface, with a darker rim underneath.
    track_depth = 0.014 * h
    dirt = _mix(np.array([120.0, 92.0, 60.0]), np.array([170.0, 136.0, 92.0]), fine)
    on_track = (depth >= 0) & (depth < track_depth)
    rim = (depth >= track_depth) & (depth < track_depth + 0.006 * h)
    terrain = np.where(on_track[..., None], dirt, terrain)
    terrain = np.where(rim[..., None], terrain * 0.6, terrain)
    canvas = np.where(ground[..., None], terrain, canvas)

    image = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), "RGB")
    _draw_flag(image, scene)
    return image


def _draw_flag(image: Image.Image, scene: MountainCarScene) -> None:
    """The goal flag: a grey pole with a bright yellow pennant, drawn anti-aliased."""
    ss = _SUPERSAMPLE
    unit = scene.height / 400.0  # gymnasium's flag is 50 px tall in a 400 px frame
    x, y = scene.to_screen(scene.goal_position)
    pole_h, flag_w, flag_h = 50 * unit, 26 * unit, 13 * unit
    left, top = int(x - 4 * unit), int(y - pole_h - 4 * unit)
    box_w, box_h = int(flag_w + 10 * unit), int(pole_h + 8 * unit)
    sprite = Image.new("RGBA", (box_w * ss, box_h * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    px, py = (x - left) * ss, (y - top) * ss
    draw.rectangle(
        (px - 1.2 * unit * ss, py - pole_h * ss, px + 1.2 * unit * ss, py + 2 * unit * ss),
        fill=(70, 70, 74, 255),
    )
    draw.ellipse(
        (
            px - 2.2 * unit * ss,
            py - (pole_h + 2.5) * unit * ss,
            px + 2.2 * unit * ss,
            py - pole_h * ss,
        ),
        fill=(210, 190, 60, 255),
    )
    flag_top = py - pole_h * ss + 1 * unit * ss
    pennant = [
        (px + 1.2 * unit * ss, flag_top),
        (px + flag_w * ss, flag_top + flag_h * ss / 2),
        (px + 1.2 * unit * ss, flag_top + flag_h * ss),
    ]
    draw.polygon(pennant, fill=(250, 210, 20, 255), outline=(180, 140, 10, 255))
    sprite = sprite.resize((box_w, box_h), Image.Resampling.LANCZOS)
    image.paste(sprite, (left, top), sprite)


def _draw_car(unit: float) -> tuple[Image.Image, float]:
    """The car, drawn facing right, on a square transparent canvas.

    Returns:
        The sprite and its half-size; the wheels' ground contact point is the canvas centre, so
        rotating about the centre tilts the car about the point where it touches the track.
    """
    ss = _SUPERSAMPLE
    half = math.ceil(34 * unit)
    size = 2 * half * ss
    sprite = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)

    def pt(u: float, v: float) -> tuple[float, float]:
        # Car coordinates in output pixels, v pointing up, origin at the ground contact point.
        return (half + u * unit) * ss, (half - v * unit) * ss

    def box(u0: float, v0: float, u1: float, v1: float) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = pt(u0, v1), pt(u1, v0)
        return x0, y0, x1, y1

    body, body_dark = (196, 32, 36, 255), (140, 20, 24, 255)
    glass, trim = (160, 205, 235, 255), (35, 35, 40, 255)
    # Cabin (behind the body so the body's top edge overlaps its base).
    draw.polygon([pt(-14, 14), pt(-10, 25), pt(5, 25), pt(12, 14)], fill=body_dark)
    draw.polygon([pt(-11.5, 15), pt(-8.5, 23), pt(-3, 23), pt(-3, 15)], fill=glass)
    draw.polygon([pt(-1, 15), pt(-1, 23), pt(4, 23), pt(9.5, 15)], fill=glass)
    # Lower body with rounded corners, a shadow line and lights.
    draw.rounded_rectangle(box(-23, 5, 23, 15.5), radius=4 * unit * ss, fill=body)
    draw.rectangle(box(-22, 5, 22, 7), fill=body_dark)
    draw.ellipse(box(19.5, 10, 23, 13), fill=(255, 240, 170, 255))  # headlight
    draw.rectangle(box(-23, 10, -21, 13), fill=(255, 90, 60, 255))  # tail light
    draw.line([pt(-2, 8), pt(-2, 14.5)], fill=body_dark, width=max(1, int(0.6 * unit * ss)))
    # Wheels: tyre, rim and hub.
    for u in (-13.5, 13.5):
        draw.ellipse(box(u - 6.2, 0, u + 6.2, 12.4), fill=trim)
        draw.ellipse(box(u - 3.4, 2.8, u + 3.4, 9.6), fill=(185, 185, 190, 255))
        draw.ellipse(box(u - 1.2, 5.0, u + 1.2, 7.4), fill=(90, 90, 95, 255))
    sprite = sprite.resize((2 * half, 2 * half), Image.Resampling.LANCZOS)
    return sprite, float(half)


class TexturedMountainCarRenderer:
    """Draws MountainCar frames in the textured style; one instance caches its background.

    Args:
        size: Output (height, width); gymnasium's MountainCar renders 400×600.
        min_position: Left end of the track in world units.
        max_position: Right end of the track.
        goal_position: Where the flag stands (0.5 for MountainCar-v0, 0.45 for Continuous).
        seed: Seed of the noise that textures sky, clouds and ground.
    """

    def __init__(
        self,
        size: tuple[int, int] = (400, 600),
        *,
        min_position: float = -1.2,
        max_position: float = 0.6,
        goal_position: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.scene = MountainCarScene(
            height=int(size[0]),
            width=int(size[1]),
            min_position=min_position,
            max_position=max_position,
            goal_position=goal_position,
        )
        self._background = _draw_background(self.scene, seed)
        self._car, self._car_half = _draw_car(self.scene.height / 400.0)

    def render(self, position: float) -> np.ndarray:
        """Frame with the car at ``position`` (world units along the track).

        Args:
            position: Car position; values outside the track are clamped to its ends.

        Returns:
            H×W×3 uint8 RGB frame.
        """
        scene = self.scene
        position = min(max(float(position), scene.min_position), scene.max_position)
        x, y = scene.to_screen(position)
        angle = math.degrees(math.atan(_track_slope(position)))
        ix, iy = math.floor(x), math.floor(y)
        # Rotate about the contact point and shift by the sub-pixel remainder, so the car glides
        # smoothly instead of snapping to whole pixels.
        shift = (x - ix, y - iy)  # Pillow takes sub-pixel shifts; its stubs say int
        car = self._car.rotate(angle, resample=Image.Resampling.BICUBIC, translate=shift)  # type: ignore[arg-type]
        frame = self._background.copy()
        offset = (ix - int(self._car_half), iy - int(self._car_half))
        frame.paste(car, offset, car)
        return np.asarray(frame, dtype=np.uint8).copy()


@lru_cache(maxsize=8)
def _cached_renderer(
    size: tuple[int, int], min_position: float, max_position: float, goal_position: float, seed: int
) -> TexturedMountainCarRenderer:
    return TexturedMountainCarRenderer(
        size,
        min_position=min_position,
        max_position=max_position,
        goal_position=goal_position,
        seed=seed,
    )


def render_mountaincar(
    position: float,
    *,
    size: tuple[int, int] = (400, 600),
    min_position: float = -1.2,
    max_position: float = 0.6,
    goal_position: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Textured MountainCar frame with the car at ``position``.

    Renderers (and their backgrounds) are cached per geometry and seed, so calling this in a
    loop costs one sprite rotation and one paste per frame.

    Args:
        position: Car position in world units.
        size: Output (height, width).
        min_position: Left end of the track.
        max_position: Right end of the track.
        goal_position: Flag position.
        seed: Texture noise seed.

    Returns:
        H×W×3 uint8 RGB frame.
    """
    renderer = _cached_renderer(
        (int(size[0]), int(size[1])),
        float(min_position),
        float(max_position),
        float(goal_position),
        int(seed),
    )
    return renderer.render(position)
