"""Files the bot ships with.

`astronaut.jpg`: Eileen Collins, NASA (public domain), from scikit-image's sample data,
resized to 384×384; the sample picture of `/styles`.
"""

from pathlib import Path

SAMPLE_PHOTO = Path(__file__).parent / "astronaut.jpg"
