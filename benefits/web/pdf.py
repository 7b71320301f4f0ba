"""HTML → PDF with WeasyPrint, relative URLs resolved in the report templates' folder.

WeasyPrint needs Pango (Debian: ``libpango-1.0-0 libpangoft2-1.0-0``) and, for Chinese, a
CJK font (``fonts-noto-cjk``).
"""

from __future__ import annotations

from benefits.resources import reports_folder


def to_pdf(html: str) -> bytes:
    """Render HTML to PDF with WeasyPrint."""
    from weasyprint import HTML

    return HTML(string=html, base_url=str(reports_folder())).write_pdf()
