import pytest


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session (start-up takes 6-8 s on 2 cores)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def mixed_folder(photo_folder, tmp_path_factory):
    """The photos (JPEG), a tiny PNG, a Fashion-MNIST-sized grey image and a broken file."""
    import shutil

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(photo_folder, root, dirs_exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), "L").save(root / "cat" / "tiny.png")
    (root / "coffee" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root


@pytest.fixture
def images_and_bad(fashion_folder, tmp_path):
    """(12 Fashion-MNIST test images, the same 12 and a broken file): the rows the Ray batch
    callables score, with one failure at the end."""
    images = sorted(str(p) for p in (fashion_folder / "test").rglob("*.png"))[:12]
    (tmp_path / "bad.png").write_bytes(b"nope")
    return images, images + [str(tmp_path / "bad.png")]
