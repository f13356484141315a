from django.urls import path

from datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
    path("projects/<int:pk>/datasets/new/", views.dataset_create, name="dataset-create"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/rename/", views.dataset_rename, name="dataset-rename"),
    path("datasets/<int:pk>/delete/", views.dataset_delete, name="dataset-delete"),
    path("datasets/<int:pk>/upload/", views.dataset_upload, name="dataset-upload"),
    path("assets/<int:pk>/", views.asset_detail, name="asset"),
    path("assets/<int:pk>/file/", views.asset_file, name="asset-file"),
    path("assets/<int:pk>/thumbnail/", views.asset_thumbnail, name="asset-thumbnail"),
    path("assets/<int:pk>/delete/", views.asset_delete, name="asset-delete"),
    path("assets/<int:pk>/metadata/", views.asset_metadata, name="asset-metadata"),
    path("assets/<int:pk>/tags/", views.asset_tag, name="asset-tag"),
]
