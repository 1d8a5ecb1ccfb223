"""One module per format family, each registering its `Format` with `registry` as it is imported.

    text.py (.txt .md)   html.py (.html .htm)   pdf.py (.pdf)   images.py (.png .jpg .jpeg .tif .tiff)
    office.py (.docx .hwpx .hwp)   slides_sheets.py (.pptx .xlsx; .doc/.ppt/.xls refused)   jsonl.py (.jsonl)

`common.py` holds the limits and helpers they share, `containers.py` the zip and OLE checks,
`registry.py` the lookup by extension and the sniff rule. `ingest.load.load_file` is the way in.
Adding a format is adding one module here that calls `register(Format(...))`.
"""

from .common import LoadLimits
from .registry import (
           Format,
           Kind,
           Magic,
           check_content,
           discover,
           extensions,
           find,
           formats,
           register,
           sniff,
)

__all__ = ["Format", "Kind", "LoadLimits", "Magic", "check_content", "discover", "extensions", "find",
           "formats", "register", "sniff"]
