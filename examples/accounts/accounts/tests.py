"""Contract tests of the accounts API, on the server's side: what it promises its clients.

Plain Django tests, no other service: `python manage.py test` in this directory.
"""

from django.test import TestCase, override_settings

from accounts.factories import UserFactory

# Hashing passwords slowly is a defence in production and only a delay in tests.
FAST_HASHING = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])


@FAST_HASHING
class UserApiTest(TestCase):
    def setUp(self):
        self.user = UserFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")

    def test_v1_has_one_name_and_one_email(self):
        response = self.client.get(f"/api/v1/users/{self.user.id}/")

        self.assertEqual(200, response.status_code)
        self.assertEqual(
            {"id": self.user.id, "name": "Ada Lovelace", "email": "ada@example.com"},
            response.json(),
        )

    def test_v2_has_a_display_name_and_a_list_of_emails(self):
        response = self.client.get(f"/api/v2/users/{self.user.id}/")

        self.assertEqual(200, response.status_code)
        self.assertEqual(
            {"id": self.user.id, "display_name": "Ada Lovelace", "emails": ["ada@example.com"]},
            response.json(),
        )

    def test_an_unknown_user_is_404(self):
        response = self.client.get("/api/v2/users/999999/")

        self.assertEqual(404, response.status_code)
        self.assertEqual({"error": "no user 999999"}, response.json())

    def test_a_deactivated_user_is_404(self):
        self.user.is_active = False
        self.user.save()

        response = self.client.get(f"/api/v2/users/{self.user.id}/")

        self.assertEqual(404, response.status_code)

    def test_a_bad_id_is_400(self):
        for bad_id in ("abc", "-1", "1.5"):
            with self.subTest(bad_id):
                response = self.client.get(f"/api/v2/users/{bad_id}/")

                self.assertEqual(400, response.status_code)
                self.assertEqual(
                    {"error": f"a user id is a positive integer, not '{bad_id}'"},
                    response.json(),
                )

    def test_only_get_is_allowed(self):
        response = self.client.post(f"/api/v2/users/{self.user.id}/")

        self.assertEqual(405, response.status_code)


@FAST_HASHING
class ServedVersionsTest(TestCase):
    """Which versions of the user API are served: v1 and v2, side by side.

    Every client has moved to v2 once no client test uses v1 (in the example: shop's
    ACCOUNTS_API_VERSION and the tests that set it to "v1"). Then v1 goes: from
    views.USER_API, and from the list below.
    """

    SERVED = ["v1", "v2"]

    def test_the_served_versions_answer(self):
        user = UserFactory()
        for version in self.SERVED:
            with self.subTest(version):
                response = self.client.get(f"/api/{version}/users/{user.id}/")

                self.assertEqual(200, response.status_code)

    def test_any_other_version_is_404_and_names_the_served_ones(self):
        response = self.client.get("/api/v3/users/1/")

        self.assertEqual(404, response.status_code)
        self.assertEqual({"error": "no user API 'v3'; served: v1, v2"}, response.json())


@FAST_HASHING
class LoginTest(TestCase):
    def setUp(self):
        self.user = UserFactory(username="ada", password="correct horse")

    def test_a_login_starts_a_session(self):
        response = self.client.post(
            "/api/login/", {"username": "ada", "password": "correct horse"}, "application/json"
        )

        self.assertEqual(200, response.status_code)
        self.assertEqual({"id": self.user.id, "username": "ada"}, response.json())
        self.assertIn("accounts_session", response.cookies)
        session = self.client.get("/api/session/")  # the test client keeps the cookie
        self.assertEqual({"id": self.user.id, "username": "ada"}, session.json())

    def test_without_a_session_nobody_is_logged_in(self):
        response = self.client.get("/api/session/")

        self.assertEqual(401, response.status_code)
        self.assertEqual({"error": "not logged in"}, response.json())

    def test_a_wrong_password_is_401(self):
        response = self.client.post(
            "/api/login/", {"username": "ada", "password": "wrong"}, "application/json"
        )

        self.assertEqual(401, response.status_code)
        self.assertEqual({"error": "wrong username or password"}, response.json())
        self.assertNotIn("accounts_session", response.cookies)

    def test_bad_input_is_400_and_says_what_is_wrong(self):
        cases = [
            ("not json", "the body must be JSON"),
            ('["ada"]', 'the body must be a JSON object: {"username": ..., "password": ...}'),
            ('{"username": "ada"}', "missing field 'password'"),
            ('{"password": "x"}', "missing field 'username'"),
            ('{"username": 1, "password": "x"}', "'username' must be a string, not a number"),
            ('{"username": "ada", "password": null}', "'password' must be a string, not null"),
            ('{"username": ["ada"], "password": "x"}', "'username' must be a string, not an array"),
        ]
        for body, message in cases:
            with self.subTest(body):
                response = self.client.post("/api/login/", body, "application/json")

                self.assertEqual(400, response.status_code)
                self.assertEqual({"error": message}, response.json())

    def test_the_factory_stores_a_hash_not_the_password(self):
        self.assertNotEqual("correct horse", self.user.password)
        self.assertTrue(self.user.check_password("correct horse"))
