"""Images the lab runs, built locally and tagged by a hash of their inputs.

No registry is needed. The base is ``debian:<release>-slim`` when it is present or can be
pulled; otherwise a Debian root made with ``debootstrap --variant=minbase`` and imported
with ``docker import``. Every other image is an ordinary Dockerfile ``FROM`` that base,
tagged ``bitbucket-lab/<name>:<hash>`` where the hash covers the base image id, the
Dockerfile and every file in its build context — an unchanged tree builds nothing. The
proxies can come from any release in :data:`lab.releases.RELEASES`.
"""

from lab.images.build import IMAGE_NAMES, ensure_images, image_tag
from lab.releases import DEFAULT_RELEASE, RELEASES

__all__ = ["DEFAULT_RELEASE", "IMAGE_NAMES", "RELEASES", "ensure_images", "image_tag"]
