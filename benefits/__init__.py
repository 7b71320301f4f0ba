"""benefits — proactive (免申即享) welfare eligibility engine.

Departmental extracts in; entitlements, alerts, quarantine and audit traces out.
"""

__version__ = "0.1.0"
