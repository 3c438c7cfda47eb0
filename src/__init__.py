"""ppx: post-purchase intelligence for e-commerce and subscription brands.

Importing the package has no side effects: nothing is created, configured or logged.
"""

__version__ = "0.1.0"
