from rest_framework.routers import DefaultRouter

from datasets import api

router = DefaultRouter()
router.register("projects", api.ProjectViewSet, basename="project")
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("assets", api.AssetViewSet, basename="asset")

urlpatterns = router.urls
