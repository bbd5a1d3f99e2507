from django.urls import path

from jobs import views

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("<int:job_id>/", views.job_detail, name="job"),
]
