"""Grouping unknown faces into people.

- :mod:`~faceprint.grouping.clustering`: clustering algorithms over unit templates (pure numpy);
- :mod:`~faceprint.grouping.faces`: the faces of a folder or a video grouped into folders of people,
  and a group enrolled by name.
"""
