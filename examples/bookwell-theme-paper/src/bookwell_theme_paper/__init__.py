"""Paper: Bookwell's booking pages as a printed appointment card.

A theme is a package with ``templates/`` and ``static/``; this one overrides only
``book/base.html`` (the layout every client page extends) and adds ``static/paper.css``. Every
other page comes from Bookwell's default theme, so new steps of the flow and plugins' boxes
appear here as they are added there.
"""

# What an owner reads when choosing a theme (`bookwell themes list`).
TITLE = "Paper"
# The page's colour behind links: a business's accent colour is checked against it (4.5:1).
BACKGROUND = "#fbf7ef"
