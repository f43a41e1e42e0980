"""Wagtail pages of the real-projects service: searchable, so saving one indexes it."""

from django.db import models
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index


class ArticlePage(Page):
    intro = models.TextField(blank=True)
    body = RichTextField(blank=True)

    search_fields = [
        *Page.search_fields,
        index.SearchField("intro"),
        index.SearchField("body"),
    ]
