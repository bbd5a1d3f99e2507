"""DRF authentication by API token, sent as `Authorization: Bearer regui_…`."""

from rest_framework import authentication, exceptions
from rest_framework.permissions import SAFE_METHODS

from accounts import tokens


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <token>'.")
        try:
            token = tokens.verify(header[1].decode("ascii", errors="replace"))
        except tokens.InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        # Checked here rather than in a permission class so that every view, including ones
        # with their own permission_classes, refuses writes made with a read-only token.
        if token.read_only and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied("This API token is read-only.")
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'
