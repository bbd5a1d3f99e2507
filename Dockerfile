# RegUI image for docker-compose.yml: one image, three roles (web, worker, beat).
FROM node:20-slim AS frontend
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 REGUI_STATIC_FROM_FINDERS=false
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY --from=frontend /build/node_modules ./node_modules
COPY . .
# collectstatic needs settings to load; these throwaway values never reach a running container.
RUN SECRET_KEY=build REGUI_ENCRYPTION_KEYS=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
    python manage.py collectstatic --no-input -v 0
RUN useradd --system --home /app regui && mkdir -p /app/var && chown regui /app/var
USER regui
EXPOSE 8000
CMD ["gunicorn", "regui.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
