"""Resource namespaces, one module per API resource."""

from .files import Files
from .folders import Folders
from .quota import QuotaResource
from .shares import Shares
from .spaces import Spaces
from .uploads import Uploads

__all__ = ["Files", "Folders", "QuotaResource", "Shares", "Spaces", "Uploads"]
