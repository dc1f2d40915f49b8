"""Images of the data sets, served one at a time for galleries."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import Response
from PIL import Image

from backend.api.deps import ReadAccess, SettingsDep
from gating_core.data import DatasetNotFoundError, load_image

router = APIRouter(prefix="/api/datasets", tags=["datasets"])


@router.get(
    "/{name}/images/{split}/{index}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    dependencies=[ReadAccess],
)
def get_image(
    settings: SettingsDep,
    name: Annotated[str, Path(max_length=300, description="Data set name, e.g. cifar10, or npz:PATH.")],
    split: Annotated[str, Path(pattern="^(train|test)$")],
    index: Annotated[int, Path(ge=0, le=10_000_000, description="Index of the image in the split.")],
    scale: Annotated[int, Query(ge=1, le=16, description="Upscale by this factor (nearest neighbour).")] = 1,
) -> Response:
    """Return one image as PNG."""
    try:
        pixels = load_image(name, split, index, settings.resolved_data_dir, settings.resolved_cache_dir)
    except (ValueError, IndexError) as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from error
    except DatasetNotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from error

    image = Image.fromarray(pixels)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})
