from django import forms

from datasets.models import Dataset


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name"]

    def __init__(self, *args, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project or getattr(self.instance, "project", None)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Dataset.objects.filter(project=self.project, name=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(f"This project already has a dataset named {name!r}.")
        return name


class AssetFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Filename", max_length=200)
    meta = forms.CharField(required=False, label="Metadata", max_length=500)
